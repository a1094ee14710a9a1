"""pgpt.tui.chat: the chat app of `pgpt-tui`: the chat screen, its widgets, messages and first start."""
