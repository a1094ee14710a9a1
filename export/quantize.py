"""Weight types of an exported graph: fp16 conversion and weight-only block quantization."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

# Measured on SmolLM2-135M (2 threads): dynamic INT8 (optimum-cli quantize) kept 17.6% top-1
# agreement; ONNX Runtime's weight-only MatMulNBits, block 32, symmetric, kept 95-98% at 8 bits.
BLOCK_SIZE = 32
# accuracy_level 4 lets the CPU EP compute with int8 activations (VNNI) where it has kernels.
ACCURACY_LEVEL = 4


def quantize_weights(model: Any, bits: int, exclude: tuple[str, ...] = ()) -> Any:
    """``model`` (a ModelProto, changed in place) with every constant-weight MatMul as MatMulNBits (4 or 8 bits).

    MatMuls named in ``exclude`` stay as they are.
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    config = DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL, bits=bits
    )
    quantizer = MatMulNBitsQuantizer(
        model, block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL, algo_config=config,
        nodes_to_exclude=list(exclude),
    )
    quantizer.process()
    return quantizer.model.model


def convert_fp16(model: Any) -> Any:
    """``model`` (a ModelProto) with weights and activations in float16 (fast on CUDA, slow on the CPU EP)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=False, disable_shape_infer=True)


def save_model(model: object, target: Path, external: bool | None = None) -> None:
    """Save a ModelProto, with its weights in a side file when protobuf's 2 GB limit requires it
    (or when ``external`` says so)."""
    import onnx

    if external is None:
        # protobuf cannot hold more than 2 GB in one file: larger graphs keep weights beside it.
        from google.protobuf.message import EncodeError

        try:
            external = model.ByteSize() > 1_800_000_000  # type: ignore[attr-defined]
        except EncodeError:  # protobuf cannot even measure a message over 2 GB (a 1.5B model in fp16)
            external = True
    onnx.save_model(
        model,  # type: ignore[arg-type]
        str(target),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=f"{target.name}.data" if external else None,
    )
    if external:
        # onnx creates the side file 0600; give it the graph's mode (the umask's), so that a model
        # cache shared with a service user or a group is readable as a whole, not all but one file.
        data = target.with_name(f"{target.name}.data")
        data.chmod(target.stat().st_mode & 0o777)
