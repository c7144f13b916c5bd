#!/usr/bin/env bash
# Create .venv with the pinned stack (requirements.txt) and install hybrid-asr into it (editable).
# Re-running is a no-op while requirements.txt and pyproject.toml are unchanged.
# Python: $PYTHON if set, else pyenv's 3.9.x, else python3.9 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp=$venv/.installed
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

find_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  local root=${PYENV_ROOT:-$HOME/.pyenv}
  local p
  for p in "$root"/versions/3.9*/bin/python3.9; do
    [[ -x $p ]] && { echo "$p"; return; }
  done
  if command -v python3.9 >/dev/null 2>&1 && python3.9 -c 'import sys' >/dev/null 2>&1; then
    command -v python3.9; return
  fi
  echo "tools/install.sh: error: no Python 3.9 found (set PYTHON=/path/to/python3.9; k2 1.23.4 on PyPI is cp39 only)" >&2
  exit 1
}

py=$(find_python)
echo "tools/install.sh: creating $venv with $py ($("$py" --version 2>&1))"
[[ -x $venv/bin/python ]] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -m pip install -q --no-deps -e . 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -c "import hybrid_asr, kaldi_hmm_gmm, k2, torch, torchaudio, lhotse, kaldilm, kaldialign, kaldingram" \
  || { echo "tools/install.sh: error: the installed stack does not import" >&2; exit 1; }
echo "$want" > "$stamp"
echo "tools/install.sh: ready ($venv)"
