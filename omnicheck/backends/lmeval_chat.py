"""lm-eval over a served model: its own chat-completions LM, told that the server applies the chat template.

lm-eval sends chat messages only to an LM that reports a chat template; a chat-completions endpoint takes nothing
else, and the template is the server's. So the LM reports a placeholder and lm-eval's text tasks run unchanged.
"""

from __future__ import annotations

from typing import Any

SERVER_CHAT_TEMPLATE = "applied by the server"


def server_chat_lm(**kwargs: Any) -> Any:
    """lm-eval's LocalChatCompletion that says it has a chat template (the server's), so prompts go as messages."""
    from lm_eval.models.openai_completions import LocalChatCompletion

    class ServerChatCompletion(LocalChatCompletion):
        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return SERVER_CHAT_TEMPLATE if chat_template else None

        @property
        def tokenizer_name(self) -> str:
            return f"server:{self.model}"

    return ServerChatCompletion(**kwargs)
