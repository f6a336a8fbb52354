"""The Hugging Face Hub: `hf-hub:ORG/NAME[@REVISION]` ids, read through huggingface_hub's cache, and uploads.

The convention is timm's (huggingface/pytorch-image-models, timm/models/_hub.py: the `hf-hub:`
prefix, `model.safetensors` beside a `config.json` that describes it, `push_to_hf_hub` writing a
folder then uploading it). Downloads go through `huggingface_hub.snapshot_download`, so the files
land in its cache ($HF_HUB_CACHE, by default ~/.cache/huggingface/hub) and `HF_HUB_OFFLINE=1`
reads them from there without the network. Uploads use `HfApi.create_repo` and `upload_folder`
with the token huggingface_hub finds (HF_TOKEN, or `hf auth login`'s stored one).

What goes in the files is `alexnet.inference.weights`' business (save_hub_folder and its reader);
this module only names, fetches and sends them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from alexnet.errors import RunFailed, UsageError, printable

HUB_PREFIX = "hf-hub:"
HUB_FILES = ("model.safetensors", "config.json")  # the weights, and their description with its digest
# the Hub's repo names (huggingface_hub.utils.validate_repo_id): ORG/NAME of letters, digits, - _ .
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")  # a branch, a tag, refs/pr/N or a commit


def is_hub_id(name: str) -> bool:
    """Whether `name` names weights on the Hub (`hf-hub:...`)."""
    return name.startswith(HUB_PREFIX)


def parse_hub_id(name: str) -> tuple[str, str | None]:
    """(ORG/NAME, REVISION or None) of `hf-hub:ORG/NAME[@REVISION]`; odd characters are one line."""
    body = name[len(HUB_PREFIX):] if is_hub_id(name) else name
    repo, _, revision = body.partition("@")
    if not check_repo_id(repo, quiet=True):
        raise UsageError(f"{printable(name)}: a Hub id is hf-hub:ORG/NAME[@REVISION], ORG and NAME of letters, "
                         "digits, '-', '_' and '.' (no '--' or '..')")
    if "@" in body and (not _REVISION.fullmatch(revision) or ".." in revision):
        raise UsageError(f"{printable(name)}: the revision after '@' must be a branch, tag or commit "
                         "(letters, digits, '.', '_', '-', '/')")
    return repo, revision or None


def check_repo_id(repo: str, *, quiet: bool = False) -> bool:
    """Whether `repo` is a valid ORG/NAME (quiet), or a one-line UsageError when it is not."""
    # huggingface_hub's validate_repo_id also refuses '--' and '..' anywhere
    ok = bool(_REPO.fullmatch(repo)) and ".." not in repo and "--" not in repo and not repo.endswith((".git", "."))
    if not ok and not quiet:
        raise UsageError(f"{printable(repo)!r} is not a Hub repo id: ORG/NAME, of letters, digits, '-', '_' and '.' "
                         "(no '--' or '..')")
    return ok


def hub_snapshot(name: str, files: tuple[str, ...] = HUB_FILES) -> Path:
    """The local folder holding `files` of the Hub repo `name` (downloaded, or from the cache)."""
    repo, revision = parse_hub_id(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{name} (revision {revision})" if revision else name
    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=list(files)))
    except LocalEntryNotFoundError:  # offline (HF_HUB_OFFLINE=1 or no network) and not in the cache
        raise UsageError(f"{where}: not in the Hugging Face cache ({cache_dir()}) and the Hub cannot be reached; "
                         "download it on a machine with network, or copy the cache here") from None
    except RevisionNotFoundError:
        raise UsageError(f"{where}: the Hub repo has no such revision") from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise UsageError(f"{where}: no such Hub repo, or it is private or gated and no token gives access") from None
    except (HfHubHTTPError, OSError) as e:
        raise RunFailed(f"{where}: cannot get it from the Hub: {_reason(e)}") from None
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise UsageError(f"{where}: the repo has no {' or '.join(missing)} (an alexnet model holds "
                         f"{' + '.join(files)}; write one with alexnet push)")
    return folder


def upload(folder: Path, repo: str, *, private: bool = False, message: str = "alexnet push") -> str:
    """Create the Hub repo `repo` if needed and upload `folder` to it; returns the commit's URL."""
    check_can_upload(repo)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        if private and not api.model_info(repo).private:  # create_repo leaves an existing repo as it is
            raise UsageError(f"{repo} exists and is public: --private does not change that; make it private "
                             "on the Hub first, or push without --private")
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model", commit_message=message)
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status is not None and 400 <= status < 500:
            raise UsageError(f"the Hub refused {repo} (HTTP {status}): {_reason(e)}") from None
        raise RunFailed(f"cannot upload to {repo}: {_reason(e)}") from None
    except (OSError, ConnectionError) as e:
        raise RunFailed(f"cannot reach the Hugging Face Hub to upload {repo}: {_reason(e)}") from None
    except Exception as e:  # the HTTP client's own errors (connect, timeout) are not OSErrors
        if type(e).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "requests", "urllib3"):
            raise
        raise RunFailed(f"cannot reach the Hugging Face Hub to upload {repo}: {_reason(e)}") from None
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo}")


def check_can_upload(repo: str) -> None:
    """Refuse, before any work, an upload that cannot start: a bad repo id, offline mode, no token."""
    check_repo_id(repo)
    from huggingface_hub import get_token

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise UsageError("HF_HUB_OFFLINE is set: unset it to upload, or write the files with --to-folder DIR")
    if get_token() is None:
        raise UsageError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN "
                         "(or write the files with --to-folder DIR)")


def cache_dir() -> str:
    """Where huggingface_hub keeps downloaded repos ($HF_HUB_CACHE)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return printable(text if len(text) <= 160 else text[:157] + "...")
