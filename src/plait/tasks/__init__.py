"""Tasks: each capability as a plain function over models (what a Python program calls), defined once as a
:class:`~plait.tasks.registry.Task` in the task registry. The CLI, the HTTP server, workflow steps and the
web page reach tasks only through that registry; none of them re-implements a task."""

from plait.tasks.embed import embed
from plait.tasks.generate import chat, chat_stream, generate, generate_stream

__all__ = ["chat", "chat_stream", "embed", "generate", "generate_stream"]
