"""Tasks: each capability as a plain function over models. The CLI, the server and workflow steps call
these; none of them re-implements a task."""

from plait.tasks.embed import embed
from plait.tasks.generate import chat, chat_stream, generate, generate_stream

__all__ = ["chat", "chat_stream", "embed", "generate", "generate_stream"]
