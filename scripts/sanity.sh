#!/usr/bin/env bash
# Runs `ansible-test sanity` on the collection. ansible-test needs the collection laid out as
# ansible_collections/<namespace>/<name>, so this copies the collection's files (tracked and
# untracked-but-not-ignored, without lab/tests/molecule) into a temporary tree and runs there.
# Every module in plugins/ is covered. Extra arguments go to ansible-test (e.g. --test validate-modules).
# Exit status: non-zero on any sanity error.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
PYTHON_VERSION=${SANITY_PYTHON:-3.11}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/vipadm/kubeadm"
mkdir -p "$dest"

# Collection content only: what galaxy.yml's build would ship, plus changelog metadata.
git ls-files -z --cached --others --exclude-standard -- \
    galaxy.yml meta plugins roles playbooks docs changelogs README.md \
  | while IFS= read -r -d '' path; do
      [ -e "$path" ] || continue   # deleted in the working tree but still in the index
      mkdir -p "$dest/$(dirname "$path")"
      cp -p "$path" "$dest/$path"
    done

# ansible-test bootstraps pip in the virtual environments of some tests with a script from
# ci-files.testing.ansible.com, which is not reachable from here. It looks for the script in its
# cache first; a stand-in there runs the tools venv's own pip instead, which installs from PyPI.
pip_version=$(python - <<'PY'
import re, ansible_test, os
source = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", source).group(1))
PY
)
bootstrap="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$bootstrap" ] || grep -q "vipadm's scripts/sanity.sh" "$bootstrap"; then
  mkdir -p "$(dirname "$bootstrap")"
  pip_site=$(python -c 'import os, pip; print(os.path.dirname(os.path.dirname(pip.__file__)))')
  cat > "$bootstrap" <<PY
# Stand-in for get-pip.py written by vipadm's scripts/sanity.sh: installs pip with the pip of $pip_site.
import runpy, sys
sys.path.insert(0, "$pip_site")
# get-pip.py's own options; pip install does not know them.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.argv = [sys.argv[0], "install"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
fi

# ansible-test only considers files git knows about when run inside a git repository.
git -C "$dest" init -q
git -C "$dest" add -A

cd "$dest"
# --local: run with this venv's Python; ansible-test still makes a small venv per test for its
# pinned linters (pylint, yamllint, voluptuous, ...), installed from PyPI once and cached in
# ~/.ansible/test/venv. shellcheck and pslint skip themselves when their tools are missing.
echo "sanity: ansible-test sanity --local --python $PYTHON_VERSION (all tests)"
ansible-test sanity --local --python "$PYTHON_VERSION" --color no "$@"
