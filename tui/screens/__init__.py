"""pgpt.tui.screens: the panels reached from the chat by a function key (Setup, Models, Docs, Chats)."""
