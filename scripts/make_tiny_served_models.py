"""Build tiny random models that vLLM can serve on a CPU, offline: Qwen2 text, Qwen2-VL, Qwen2-Audio, and
compressed-tensors variants of the text model (FP8_DYNAMIC serves on every CPU, NVFP4A16 on none; W8A8 and W4A16
depend on the CPU), and the same schemes applied to the trained omni-small (fixtures/omni-small, gemma4_unified):
omni-fp8_dynamic, omni-w8a8, omni-w4a16, their language model's linear layers only, as the omni panel's are.

Runs in the runtime venv (transformers 5.23, compressed-tensors 0.20); the quantized variants are made with
compressed-tensors' own API (apply_quantization_config + calculate_qparams + ModelCompressor), no llmcompressor.
Every folder gets an omnicheck-tiny.json stamp; an existing folder with the same recipe is kept as it is.

    python scripts/make_tiny_served_models.py OUT_DIR [--only text,vl,audio,fp8_dynamic,...,omni-w8a8]

The omni-small variants are saved as transformers writes them, without the vision_config.num_soft_tokens that vLLM
0.32 reads: the tests serve copies fixed the way `omnicheck inspect` says (omnicheck.formats.serving).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

RECIPE_VERSION = "1"
STAMP = "omnicheck-tiny.json"
SEED = 0

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
    "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>",
]

# ChatML, as Qwen2 models use it; media parts become the placeholder runs each processor expands.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ('image', 'image_url') %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] in ('video', 'video_url') %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] in ('audio', 'input_audio', 'audio_url') %}<|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

WORDS = (
    "the a an cat dog bird fish tree house car road river sky sun moon star red blue green yellow black white "
    "small big old new fast slow happy sad one two three four five six seven eight nine ten is are was were has "
    "have sees hears reads writes runs walks sits stands on in under over near with and or but not what which who "
    "where when how why picture image sound audio video frame question answer number word say describe count "
    "yes no man woman child people water fire stone grass flower book music voice speech noise color shape"
).split()

TEXT_DIMS: dict[str, Any] = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6,
                                 rope_theta=10000.0, initializer_range=0.1)


def corpus(lines: int = 2000) -> list[str]:
    """Deterministic pseudo-sentences over a small vocabulary: enough for BPE to learn whole words."""
    out, state = [], 12345
    for _ in range(lines):
        words = []
        for _ in range(4 + state % 9):
            state = (state * 1103515245 + 12345) % (1 << 31)
            words.append(WORDS[state % len(WORDS)])
        out.append(" ".join(words).capitalize() + ".")
    return out + [f"{n} + {n + 1} = {2 * n + 1}" for n in range(200)]


def build_tokenizer(vocab_size: int = 1024) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, unk_token=None, model_max_length=4096)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def token_id(tokenizer: Any, token: str) -> int:
    return int(tokenizer.convert_tokens_to_ids(token))


def _text_config_kwargs(tokenizer: Any) -> dict[str, Any]:
    return dict(TEXT_DIMS, vocab_size=len(tokenizer), bos_token_id=token_id(tokenizer, "<|endoftext|>"),
                eos_token_id=token_id(tokenizer, "<|im_end|>"), pad_token_id=token_id(tokenizer, "<|endoftext|>"),
                tie_word_embeddings=False)


def _save(model: Any, tokenizer: Any, out: Path, processor: Any = None) -> None:
    import torch
    from transformers import GenerationConfig

    model.to(torch.float32).save_pretrained(out)
    (processor or tokenizer).save_pretrained(out)
    if processor is not None:
        tokenizer.save_pretrained(out)
    eos = token_id(tokenizer, "<|im_end|>")
    GenerationConfig(eos_token_id=eos, pad_token_id=token_id(tokenizer, "<|endoftext|>"), do_sample=False
                     ).save_pretrained(out)


def make_text(out: Path) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(Qwen2Config(**_text_config_kwargs(tokenizer), dtype="float32"))
    _save(model.eval(), tokenizer, out)


def make_vl(out: Path) -> None:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    tokenizer = build_tokenizer()
    text = _text_config_kwargs(tokenizer)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": text.pop("rope_theta"),
                               "mrope_section": [head_dim // 8, head_dim * 3 // 16, head_dim * 3 // 16]}
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(depth=1, embed_dim=64, hidden_size=text["hidden_size"], num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=token_id(tokenizer, "<|image_pad|>"), video_token_id=token_id(tokenizer, "<|video_pad|>"),
        vision_start_token_id=token_id(tokenizer, "<|vision_start|>"),
        vision_end_token_id=token_id(tokenizer, "<|vision_end|>"), dtype="float32",
    )
    torch.manual_seed(SEED)
    model = Qwen2VLForConditionalGeneration(config)
    # few visual tokens per image/frame keep requests fast on a CPU
    pixels = dict(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels, fps=2.0),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
    )
    _save(model.eval(), tokenizer, out, processor)


def make_audio(out: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor, WhisperFeatureExtractor

    tokenizer = build_tokenizer()
    text = dict(_text_config_kwargs(tokenizer), model_type="qwen2")
    config = Qwen2AudioConfig(
        audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=128,
                          d_model=64, max_source_positions=1500),
        text_config=text, audio_token_index=token_id(tokenizer, "<|AUDIO|>"), dtype="float32",
    )
    torch.manual_seed(SEED)
    model = Qwen2AudioForConditionalGeneration(config)
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128, sampling_rate=16000),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
    )
    _save(model.eval(), tokenizer, out, processor)
    # transformers 5 writes the language model as language_model.model.model.*; vLLM reads language_model.model.*
    for shard in out.glob("*.safetensors"):
        tensors = load_file(shard)
        renamed = {k.replace("language_model.model.model.", "language_model.model."): v for k, v in tensors.items()}
        if renamed.keys() != tensors.keys():
            save_file(renamed, shard, metadata={"format": "pt"})


def make_quantized(scheme: str, text_dir: Path, out: Path) -> None:
    """A compressed-tensors checkpoint of the tiny text model, quantized with compressed-tensors' own API."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantize_and_save(AutoModelForCausalLM, text_dir, scheme, ["Linear"], out, dtype="float32")
    AutoTokenizer.from_pretrained(text_dir).save_pretrained(out)
    shutil.copy(text_dir / "generation_config.json", out / "generation_config.json")


OMNI_SMALL = Path(__file__).resolve().parents[1] / "fixtures" / "omni-small"
OMNI_FILES = ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja",
              "generation_config.json")
OMNI_TARGETS = [r"re:.*language_model.*_proj$"]  # the omni panel's targets: vision and audio projections stay bf16


def make_omni_quantized(scheme: str, out: Path) -> None:
    """omni-small (bf16) with its language model's linear layers quantized, saved in bf16 like the panel's."""
    from transformers import AutoModelForImageTextToText

    quantize_and_save(AutoModelForImageTextToText, OMNI_SMALL, scheme, OMNI_TARGETS, out, dtype="bfloat16")
    for name in OMNI_FILES:
        shutil.copy(OMNI_SMALL / name, out / name)


def quantize_and_save(auto_class: Any, source: Path, scheme: str, targets: list[str], out: Path, dtype: str) -> None:
    import torch
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, apply_quantization_config, preset_name_to_scheme
    from compressed_tensors.quantization.utils import calculate_qparams

    model = auto_class.from_pretrained(source, dtype=getattr(torch, dtype))
    config = QuantizationConfig(config_groups={"group_0": preset_name_to_scheme(scheme, targets)},
                                ignore=["lm_head"])
    apply_quantization_config(model, config)
    for module in model.modules():
        scheme_args = getattr(module, "quantization_scheme", None)
        if scheme_args is None or scheme_args.weights is None:
            continue
        set_weight_qparams(module, scheme_args.weights, calculate_qparams)
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model)
    model.save_pretrained(out)
    compressor.update_config(str(out))


def set_weight_qparams(module: Any, args: Any, calculate_qparams: Callable[..., Any]) -> None:
    """Min/max weight observation per the scheme's strategy (channel, group, tensor-group), then the qparams."""
    weight = module.weight.detach()
    strategy = str(args.strategy.value if hasattr(args.strategy, "value") else args.strategy)
    if strategy in ("group", "tensor_group"):
        grouped = weight.reshape(weight.shape[0], -1, args.group_size)
        lo, hi = grouped.amin(dim=-1), grouped.amax(dim=-1)
    elif strategy == "channel":
        lo, hi = weight.amin(dim=1, keepdim=True), weight.amax(dim=1, keepdim=True)
    else:
        lo, hi = weight.amin().reshape(1), weight.amax().reshape(1)
    global_scale = None
    if strategy == "tensor_group":
        from compressed_tensors.quantization.utils import generate_gparam

        global_scale = generate_gparam(weight.amin(), weight.amax())
        module.weight_global_scale.data.copy_(global_scale)
    scale, zero_point = calculate_qparams(lo, hi, args, global_scale=global_scale)
    module.weight_scale.data.copy_(scale.to(module.weight_scale.dtype))
    if hasattr(module, "weight_zero_point"):
        module.weight_zero_point.data.copy_(zero_point.to(module.weight_zero_point.dtype))


QUANT_SCHEMES = {"fp8_dynamic": "FP8_DYNAMIC", "w8a8": "W8A8", "w4a16": "W4A16", "nvfp4a16": "NVFP4A16"}
BUILDERS: dict[str, Callable[[Path], None]] = {"text": make_text, "vl": make_vl, "audio": make_audio}
OMNI_SCHEMES = {f"omni-{name}": QUANT_SCHEMES[name] for name in ("fp8_dynamic", "w8a8", "w4a16")}
ALL = ["text", "vl", "audio", *QUANT_SCHEMES, *OMNI_SCHEMES]


def recipe_digest(name: str) -> str:
    """This script's bytes, and for the omni-small variants the weights they start from."""
    digest = hashlib.sha256(Path(__file__).read_bytes() + RECIPE_VERSION.encode())
    if name in OMNI_SCHEMES:
        digest.update((OMNI_SMALL / "model.safetensors").read_bytes())
    return digest.hexdigest()[:16]


def is_built(folder: Path) -> bool:
    try:
        return json.loads((folder / STAMP).read_text())["recipe"] == recipe_digest(folder.name)
    except (OSError, ValueError, KeyError):
        return False


def build(name: str, root: Path) -> Path:
    folder = root / name
    if is_built(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    tmp = root / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if name in QUANT_SCHEMES:
        make_quantized(QUANT_SCHEMES[name], build("text", root), tmp)
    elif name in OMNI_SCHEMES:
        make_omni_quantized(OMNI_SCHEMES[name], tmp)
    else:
        BUILDERS[name](tmp)
    (tmp / STAMP).write_text(json.dumps({"recipe": recipe_digest(name), "name": name}))
    tmp.rename(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {ALL}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        parser.error(f"unknown model(s) {unknown}: choose from {ALL}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(build(name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
