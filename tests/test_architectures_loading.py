"""Loading through the architecture registry: nothing run from a model folder (issue 25 case
2), a damaged weights file in one line (case 4a), no head initialised at random, and one line
for an architecture outside the registry or of an unsupported head kind (issue 24)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_models_hf import _bpe_tokenizer, _llama

from allornone import AllOrNoneError
from allornone.models import load

MARKER_CODE = """
from pathlib import Path
Path({marker!r}).write_text("code from the model folder ran")
from transformers import LlamaConfig, LlamaForCausalLM
class EvilConfig(LlamaConfig):
    model_type = "evil"
class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    tok = _bpe_tokenizer()
    d = tmp_path_factory.mktemp("arch") / "llama"
    _llama(len(tok), tied=False).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLORNONE_CACHE", str(tmp_path / "cache"))


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "m"))


def test_complete_folder_loads(folder):
    lm = load(str(folder), cache=False)
    assert lm.adapter is not None and lm.adapter.kind == "plain" and lm.logit_check < 1e-5


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_code_in_the_model_folder_never_runs(where, folder, tmp_path):
    d = _copy(folder, tmp_path)
    marker = tmp_path / "MARKER"
    (d / "modeling_evil.py").write_text(MARKER_CODE.format(marker=str(marker)))
    cfg = json.loads((d / where).read_text())
    if where == "config.json":
        cfg["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig",
                           "AutoModelForCausalLM": "modeling_evil.EvilModel"}  # fmt: skip
    else:
        cfg["auto_map"] = {"AutoTokenizer": ["modeling_evil.EvilTok", None]}
    (d / where).write_text(json.dumps(cfg))
    with pytest.raises(AllOrNoneError) as info:
        load(str(d))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{d / where} asks to run code from the model folder")
    assert "modeling_evil.py" in msg and "trust_remote_code=False" in msg
    # the CLI, with "y" on stdin (transformers' trust prompt): exit 2, one line, no marker
    proc = subprocess.run(
        [sys.executable, "-m", "allornone", "audit", "--quick", "--model", str(d),
         "--out", str(tmp_path / "out")],
        input="y\ny\n", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "asks to run code from the model folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("how", ["truncated", "crafted"])
def test_damaged_safetensors_is_one_line(how, folder, tmp_path):
    d = _copy(folder, tmp_path)
    f = d / "model.safetensors"
    if how == "truncated":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:  # a header length pointing far beyond the file
        f.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(AllOrNoneError) as info:
        load(str(d))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{f}: not a readable safetensors file")


def test_missing_head_is_refused_not_reinitialised(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    d = _copy(folder, tmp_path)
    sd = load_file(d / "model.safetensors")
    del sd["lm_head.weight"]
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(AllOrNoneError, match=r"weights lack 1 tensor\(s\) of LlamaForCausalLM "
                       r"\(lm_head.weight\).*initialise them at random"):  # fmt: skip
        load(str(d))


@pytest.mark.parametrize(
    ("model_type", "expect"),
    [
        ("my_new_arch", "architecture 'my_new_arch' is not in allornone's registry"),
    ],
)
def test_unknown_or_unsupported_architecture_is_one_line(model_type, expect, folder, tmp_path):
    d = _copy(folder, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = model_type
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AllOrNoneError) as info:
        load(str(d))
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400
    assert expect in msg
    assert "plain, biased, scaled, softcapped, state-space, masked-lm, encoder-decoder" in msg
    assert "docs/ARCHITECTURES.md" in msg


def test_encoder_decoder_object_loads_and_needs_a_start_token():
    """A T5 object used to crash with a raw ValueError (no decoder input): it now loads, its
    context being the source text with an empty target prefix."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = _bpe_tokenizer()
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(tok),
            d_model=32,
            d_ff=64,
            num_layers=1,
            num_heads=2,
            d_kv=8,
            decoder_start_token_id=0,
        )  # fmt: skip
    )
    lm = load(model, tokenizer=tok, cache=False)
    assert lm.adapter is not None and lm.adapter.kind == "encoder-decoder"
    assert lm.logit_check < 1e-5 and lm.embed(["a b c"]).shape == (1, 32)
    model.config.decoder_start_token_id = None
    model.generation_config.decoder_start_token_id = None
    with pytest.raises(AllOrNoneError, match="encoder-decoder without config.decoder_start"):
        load(model, tokenizer=tok)
