"""Histories of runs: recording them on the real engine (`recording`), the client operations the
REST front sees (`client`), the checkers that read them (`checkers`), the timeline that shows them
(`timeline`) and the `tasksim check` / `tasksim timeline` commands (`cli`). The format and the
recorder itself are simnode/history.py, shared by every engine."""
