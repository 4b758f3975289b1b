"""`plait generate` and `plait chat`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from plait.cli.common import read_input, state, write
from plait.cli.tasks import print_json, relay, stream_task
from plait.models.base import Message, TextGenerator

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="catalog name (default: chat_model setting)")]
MaxTokens = Annotated[int | None, typer.Option(help="cap on generated tokens")]
Temperature = Annotated[float | None, typer.Option(help="0 for deterministic output")]
TopP = Annotated[float | None, typer.Option(help="nucleus sampling")]
Seed = Annotated[int | None, typer.Option(help="fix the sampler for reproducible output")]
Stop = Annotated[list[str] | None, typer.Option(help="stop at this text (repeatable)")]


def register(app: typer.Typer) -> None:
    app.command()(generate)
    app.command()(chat)


def generate(
    ctx: typer.Context,
    prompt: Annotated[str | None, typer.Argument(help="the prompt; '-' or nothing reads standard input")] = None,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option(help="system prompt (chat models)")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="plain completion: no chat template")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object with text and usage")] = False,
    max_tokens: MaxTokens = None, temperature: Temperature = None, top_p: TopP = None, seed: Seed = None,
    stop: Stop = None,
) -> None:
    """Generate text from a prompt, streamed as it is produced.

    Chat models answer the prompt as one user turn with their own chat template (like Ollama's generate);
    --raw continues the prompt as plain text.
    """
    fields = {"prompt": read_input(prompt), "model": model, "system": system, "raw": raw, "max_tokens": max_tokens,
              "temperature": temperature, "top_p": top_p, "seed": seed, "stop": stop}
    task, stream = stream_task(ctx, "generate", fields)
    relay(stream, echo=not as_json)
    if as_json:
        print_json(task, stream.result())
    else:
        write("\n")


CHAT_HELP = "commands: /reset forgets the conversation, /system TEXT sets the system prompt, /exit quits; " \
            "Ctrl-C stops an answer, Ctrl-D quits"


def chat(
    ctx: typer.Context,
    model: ModelOpt = None,
    system: Annotated[str | None, typer.Option(help="system prompt")] = None,
    max_tokens: MaxTokens = None, temperature: Temperature = None, top_p: TopP = None, seed: Seed = None,
) -> None:
    """Talk with a chat model: multi-turn, streamed; Ctrl-C stops the current answer and keeps the session."""
    rt = state(ctx).runtime()
    name = model or rt.settings.chat_model
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"plait chat with {name} (loading…)", file=sys.stderr)
    gen = rt.model(name, TextGenerator)
    if "chat" not in gen.spec.capabilities:
        raise typer.BadParameter(f"{name} is not a chat model; use `plait generate --raw`", param_hint="--model")
    if interactive:
        print(CHAT_HELP, file=sys.stderr)
    options = {"model": name, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
    history: list[Message] = [Message("system", system)] if system else []
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            write("\n")
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit", "/bye"):
            break
        if line == "/reset":
            history = [m for m in history if m.role == "system"]
            print("(conversation forgotten)", file=sys.stderr)
            continue
        if line.startswith("/system"):
            history = [Message("system", line[len("/system"):].strip())] + [m for m in history if m.role != "system"]
            continue
        if line.startswith("/"):
            print(CHAT_HELP, file=sys.stderr)
            continue
        history.append(Message("user", line))
        # The chat task drops the oldest turns when the conversation outgrows the context window.
        messages = [{"role": m.role, "content": m.content} for m in history]
        _, stream = stream_task(ctx, "chat", {"messages": messages, **options})
        if interactive:
            write(f"{name}> ")
        relay(stream)
        write("\n")
        history.append(Message("assistant", stream.result().text))
