"""The package's front door: `import alexnet` is cheap, yet help() and dir() show every public name."""

import pydoc
import subprocess
import sys

import alexnet


def test_help_lists_every_public_function_with_its_signature():
    text = pydoc.render_doc(alexnet, renderer=pydoc.plaintext)
    assert set(alexnet.__all__) <= set(dir(alexnet))
    for signature in ("predict(images", "fit(cfg", "build_model(name", "load_checkpoint(", "model_from_checkpoint(ckpt",
                      "export(source", "load_weights(", "evaluate(model", "train_one_epoch(model", "class TrainConfig"):
        assert signature in text, signature


def test_import_stays_cheap_and_names_still_resolve():
    code = "import sys, alexnet; print('torch' in sys.modules); alexnet.predict; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
