#!/bin/sh
# Install the NLTK data pixtag needs (WordNet 3.0 + English stopwords) without nltk.download().
#
#   scripts/setup_nltk.sh [TARGET] [--force]     default TARGET: <repo>/.venv/nltk_data
#
# WordNet comes from the Debian packages wordnet-base and wordnet-sense-index: when
# /usr/share/wordnet/data.noun is missing and we are root, they are installed with apt-get;
# otherwise pixtag prints the exact command. The copying (lexnames, private real files,
# stamp for idempotency) is done by `python -m pixtag setup-nltk`.
# Environment: PYTHON (default <repo>/.venv/bin/python).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
target=$repo/.venv/nltk_data
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    target=$1
    shift
fi

if [ ! -f /usr/share/wordnet/data.noun ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_nltk: installing WordNet 3.0 (Debian packages wordnet-base wordnet-sense-index)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends wordnet-base wordnet-sense-index >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base wordnet-sense-index; }
fi

if [ ! -x "$python" ]; then
    echo "setup_nltk: $python not found; create the venv first (make setup) or set PYTHON" >&2
    exit 1
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m pixtag setup-nltk "$target" "$@"
