"""The generator contract: text in, text out, tokens streamed as they come.

A backend implements `generate` and the three token helpers; everything that packs prompts (answers,
summaries) works through this contract, so it never needs to know which model family it talks to.
"""

from __future__ import annotations

from collections.abc import Callable

OnToken = Callable[[str], None]


class Generator:
    """A causal language model that continues a prompt.

    `context_length` counts every position the model can see, prompt and answer together (GPT-2: 1,024).
    `chat` is True when the model has a chat template; `render_chat` then turns messages into its prompt text.
    """

    name: str = ""
    context_length: int = 1024
    chat: bool = False

    def generate(
        self, prompt: str, max_tokens: int, temperature: float = 0.0, on_token: OnToken | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        """Continue `prompt` with at most `max_tokens` tokens; greedy when `temperature` is 0; the text ends
        before the first of the `stop` strings.

        `on_token` receives each piece of text as soon as it is decoded; an exception it raises stops the
        generation and propagates (a server uses that when its client goes away)."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` that is at most `max_tokens` tokens."""
        raise NotImplementedError

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text for `messages` under the model's chat template, ready for the assistant's turn."""
        raise NotImplementedError(f"generator '{self.name}' has no chat template")

    # -- helpers every backend gets ---------------------------------------------------------------------
    def prompt_budget(self, max_tokens: int) -> int:
        """How many prompt tokens fit beside an answer of `max_tokens` tokens."""
        return max(0, self.context_length - max_tokens)

    def fit_answer(self, prompt_tokens: int, max_tokens: int) -> int:
        """`max_tokens`, shortened so prompt + answer stay inside the context window."""
        return max(0, min(max_tokens, self.context_length - prompt_tokens))

    def fit_ids(self, ids: list[int], max_tokens: int) -> tuple[list[int], int]:
        """The prompt's token ids cut to the window (keeping the end, where the question is: the caller should
        have fitted the prompt already) and how many tokens the answer may take beside them."""
        room = self.context_length - 1
        if len(ids) > room:
            import logging

            logging.getLogger(__name__).warning("prompt of %d tokens cut to the last %d for '%s'", len(ids), room,
                                                self.name)
            ids = ids[-room:]
        return ids, self.fit_answer(len(ids), max_tokens)
