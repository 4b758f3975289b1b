"""`plait generate` and `plait chat`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from plait.cli.common import read_input, state, write
from plait.models.base import Delta, GenerationOptions, GenerationRequest, Message, TextGenerator
from plait.tasks.generate import chat_stream, fit_history, generate_stream

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="catalog name (default: chat_model setting)")]
MaxTokens = Annotated[int | None, typer.Option(help="cap on generated tokens")]
Temperature = Annotated[float | None, typer.Option(help="0 for deterministic output")]
TopP = Annotated[float | None, typer.Option(help="nucleus sampling")]
Seed = Annotated[int | None, typer.Option(help="fix the sampler for reproducible output")]
Stop = Annotated[list[str] | None, typer.Option(help="stop at this text (repeatable)")]


def _options(max_tokens: int | None, temperature: float | None, top_p: float | None, seed: int | None,
             stop: list[str] | None) -> GenerationOptions:
    return GenerationOptions(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
                             stop=tuple(stop or ()))


def _relay(deltas: object, request: GenerationRequest, *, echo: bool = True) -> tuple[str, Delta | None]:
    """Print deltas as they come; Ctrl-C cancels this answer only. Returns the text and the final delta."""
    parts: list[str] = []
    last: Delta | None = None
    iterator = iter(deltas)  # type: ignore[call-overload]
    try:
        for delta in iterator:
            if delta.text:
                parts.append(delta.text)
                if echo:
                    write(delta.text)
            if delta.finish_reason:
                last = delta
    except KeyboardInterrupt:
        request.cancel.set()
        iterator.close()  # releases the model at once
        if echo:
            write(" [stopped]")
        last = Delta("", finish_reason="cancelled")
    return "".join(parts), last


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
    text = read_input(prompt)
    rt = state(ctx).runtime()
    name = model or rt.settings.chat_model
    gen = rt.model(name, TextGenerator)
    options = _options(max_tokens, temperature, top_p, seed, stop)
    if raw or "chat" not in gen.spec.capabilities:
        request = GenerationRequest(prompt=text, options=options)
        deltas = generate_stream(text, model=gen, request=request)
    else:
        messages = ([Message("system", system)] if system else []) + [Message("user", text)]
        request = GenerationRequest(messages=tuple(messages), options=options)
        deltas = chat_stream(messages, model=gen, request=request)
    answer, last = _relay(deltas, request, echo=not as_json)
    if as_json:
        usage = last.usage if last and last.usage else None
        print(json.dumps({
            "model": name, "text": answer, "finish_reason": last.finish_reason if last else "stop",
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
            if usage else None,
        }, ensure_ascii=False))
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
    options = _options(max_tokens, temperature, top_p, seed, None)
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
        # A long session outgrows the context window: forget the oldest turns rather than fail.
        history = fit_history(history, gen, options.max_tokens or rt.settings.max_tokens)
        request = GenerationRequest(messages=tuple(history), options=options)
        if interactive:
            write(f"{name}> ")
        answer, _ = _relay(chat_stream(history, model=gen, request=request), request)
        write("\n")
        history.append(Message("assistant", answer))
