"""Which part of a multimodal model a module belongs to, from its name alone (on-disk or run-time)."""

from __future__ import annotations

import functools
import re

GROUPS = (
    "vision_tower",
    "vision_projector",
    "audio_tower",
    "audio_projector",
    "embeddings",
    "per_layer_embeddings",
    "attention_q",
    "attention_k",
    "attention_v",
    "attention_o",
    "mlp",
    "moe_router",
    "moe_experts",
    "lm_head",
    "speech_output",
    "other",
)
MEDIA_GROUPS = ("vision_tower", "vision_projector", "audio_tower", "audio_projector")

_VISION = re.compile(r"(^|\.)(vision|visual|image|img|siglip|vit|patch|embed_vision|vision_embedder|multi_modal_projector|mm_projector)", re.I)
_AUDIO = re.compile(r"(^|\.)(audio|speech|whisper|conformer|embed_audio|audio_embedder|mel)", re.I)
# A tower's own modules (attention, MLP, its input and output projections) stay in the tower group; only these
# parts of a tower map its features into the language model's space.
_TOWER = re.compile(r"(^|\.)(vision_tower|audio_tower|visual|vision_model|audio_model|vision_encoder|audio_encoder)\.", re.I)
_TOWER_PROJECTOR = re.compile(r"(merger|adapter|connector|multi_modal_projector|mm_projector)", re.I)
# Within a media branch: the parts that map media features into the language model's space.
_PROJECTOR = re.compile(
    r"(projector|projection|proj_in|merger|adapter|connector|embed_vision|embed_audio|vision_embedder|"
    r"audio_embedder|patch_dense|patch_embed|mm_)",
    re.I,
)
# `thinker.model` is the language model on disk; at run time transformers nests the towers under it too.
_LANGUAGE = re.compile(
    r"(^|\.)(language_model|text_model|llm|decoder|thinker\.model(?!\.(visual|audio_tower)(\.|$)))(\.|$)", re.I
)
# Omni models that speak: the talker and its waveform decoder. omnicheck reads text, so it never runs them.
_SPEECH_OUTPUT = re.compile(r"(^|\.)(talker|token2wav|code2wav)(\.|$)", re.I)
_EXPERTS = re.compile(r"\.experts(\.|$)|block_sparse_moe|\.moe\.", re.I)
# The MoE router: gemma4 `router.proj`, Qwen-MoE `mlp.gate`, Mixtral `block_sparse_moe.gate`.
_ROUTER = re.compile(r"\.router(\.|$)|\.(mlp|block_sparse_moe|moe)\.gate$", re.I)
# Per-layer embeddings (Gemma 3n / Gemma 4 E2B-E4B): the packed per-layer table, its projection from the model's
# width, and each decoder layer's gate and projection back into the residual stream.
_PER_LAYER = re.compile(r"(embed_tokens_per_layer|per_layer_model_projection|per_layer_input_gate|"
                        r"per_layer_projection)$", re.I)
_LM_HEAD = re.compile(r"(^|\.)(lm_head|embed_out|output_layer)$", re.I)
_EMBEDDING = re.compile(r"(embed_tokens|word_embeddings|wte|tok_embeddings|embed_positions)$", re.I)
_ATTN = {
    "attention_q": re.compile(r"(q_proj|query|\.wq|q_a_proj|q_b_proj|q_gate_proj)$", re.I),
    "attention_k": re.compile(r"(k_proj|key|\.wk)$", re.I),
    "attention_v": re.compile(r"(v_proj|value|\.wv)$", re.I),
    "attention_o": re.compile(r"(o_proj|out_proj|dense|\.wo)$", re.I),
}
_FUSED_QKV = re.compile(r"(qkv_proj|query_key_value|c_attn|\.qkv)$", re.I)
_MLP = re.compile(r"(mlp|feed_forward|ffn|gate_proj|up_proj|down_proj|fc1|fc2|w1|w2|w3|gate_up_proj)", re.I)


_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")


def _pattern(name: str) -> str:
    """The name with its layer / expert indices replaced: modules that differ only there share a group, so a 26B MoE's
    12k expert names cost a few dozen regex passes, not 12k."""
    return _INDEX.sub("#", name)


def modality_of(name: str) -> str:
    """'vision', 'audio' or 'text': which input a module mainly serves."""
    return _modality(_pattern(name))


def classify(name: str) -> tuple[str, str]:
    """(group, modality) of a module name, its indices normalised once."""
    pattern = _pattern(name)
    return _group(pattern), _modality(pattern)


@functools.lru_cache(maxsize=4096)
def _modality(name: str) -> str:
    if _LANGUAGE.search(name):
        return "text"
    if _AUDIO.search(name):
        return "audio"
    if _VISION.search(name):
        return "vision"
    return "text"


def group_of(name: str) -> str:
    """The module group of a module name (see GROUPS)."""
    return _group(_pattern(name))


@functools.lru_cache(maxsize=4096)
def _group(name: str) -> str:
    if _SPEECH_OUTPUT.search(name):
        return "speech_output"
    if _LM_HEAD.search(name):
        return "lm_head"
    modality = modality_of(name)
    if modality != "text":
        tower = _TOWER.search(name)
        if tower:
            inside = name[tower.end():]
            return f"{modality}_projector" if _TOWER_PROJECTOR.search(inside) else f"{modality}_tower"
        return f"{modality}_projector" if _PROJECTOR.search(name) else f"{modality}_tower"
    if _PER_LAYER.search(name):
        return "per_layer_embeddings"
    if _EMBEDDING.search(name):
        return "embeddings"
    if _ROUTER.search(name):
        return "moe_router"
    if _EXPERTS.search(name):
        return "moe_experts"
    if _FUSED_QKV.search(name):
        return "attention_q"
    if re.search(r"(attn|attention)", name, re.I):
        for group, pattern in _ATTN.items():
            if pattern.search(name):
                return group
    if _MLP.search(name):
        return "mlp"
    return "other"


def is_media_group(group: str) -> bool:
    return group in MEDIA_GROUPS


_TOWER_PARTS = (
    ("input_projection", re.compile(r"(patch_embed|input_proj|subsample|conv_proj|patch_dense)", re.I)),
    ("output_projection", re.compile(r"(output_proj|\.proj$|post_proj)", re.I)),
    ("attention", re.compile(r"(attn|attention)", re.I)),
    ("mlp", re.compile(r"(mlp|feed_forward|ffw|ffn|fc1|fc2)", re.I)),
    ("convolution", re.compile(r"(conv|lconv)", re.I)),
)


def tower_part(name: str) -> str:
    """Which part of a vision/audio tower a module is: input_projection, attention, mlp, convolution,
    output_projection or other (the card breaks tower groups down by these)."""
    for part, pattern in _TOWER_PARTS:
        if pattern.search(name):
            return part
    return "other"
