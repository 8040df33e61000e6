"""Tab completion for bash, zsh and the interactive shell, from one candidate function.

The shells call the hidden ``cumulo __complete "<line up to the cursor>"``, which prints one
candidate per line as ``word<TAB>description``: verbs, then nouns, then ``param=`` names not
yet given, then values. Values of id parameters are fetched live from the related list API
(``zoneid=<TAB>`` lists the zones' ids, described by their names), so completion needs the
cloud only at that point; everything else comes from the cached catalogue.
"""

from __future__ import annotations

import shlex
from typing import Any

import httpx

from cumulo.cli import apicache
from cumulo.cli.client import ApiError
from cumulo.cli.profiles import ProfileError, load_config

OPERATOR_COMMANDS = ("up", "server", "init", "agent", "s3", "db", "zone", "image")
CLIENT_COMMANDS = ("api", "completion", "help", "profile", "shell", "status", "sync")
PROFILE_ACTIONS = ("add", "list", "remove", "show", "use")
VALUE_OPTIONS = frozenset({"-o", "--output", "-p", "--profile", "--filter"})
NAME_FIELDS = ("name", "displayname", "username", "displaytext", "ipaddress", "description")
Candidate = tuple[str, str]

BASH = r"""# cumulo bash completion: eval "$(cumulo completion bash)"
_cumulo_complete() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local cur="${line##*[[:space:]]}"
    local IFS=$'\n'
    local -a found
    found=($(cumulo __complete "$line" 2>/dev/null))
    found=("${found[@]%%$'\t'*}")
    if [[ "$cur" == *=* && "$COMP_WORDBREAKS" == *=* ]]; then
        local prefix="${cur%=*}="
        found=("${found[@]#"$prefix"}")
    fi
    COMPREPLY=("${found[@]}")
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
}
complete -F _cumulo_complete cumulo
"""

ZSH = r"""#compdef cumulo
# cumulo zsh completion: eval "$(cumulo completion zsh)" (after compinit)
_cumulo() {
    local line="${BUFFER[1,CURSOR]}"
    local -a found described
    local entry
    found=("${(@f)$(cumulo __complete "$line" 2>/dev/null)}")
    for entry in $found; do
        [[ -z "$entry" ]] && continue
        described+=("${${entry%%$'\t'*}//:/\\:}:${entry#*$'\t'}")
    done
    _describe -t cumulo 'cumulo' described -S ''
}
compdef _cumulo cumulo
"""


def script(shell: str) -> str:
    if shell == "bash":
        return BASH
    if shell == "zsh":
        return ZSH
    raise ValueError(f"no completion for {shell!r}: bash or zsh")


def split_line(line: str) -> list[str]:
    """The words before the cursor; the last one is the word being completed (maybe '')."""
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote: complete what is there
        words = line.split()
    if not line or line[-1].isspace():
        words.append("")
    return words


def _strip_options(words: list[str]) -> tuple[list[str], str | None]:
    out: list[str] = []
    profile: str | None = None
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            if words[i - 1] in ("-p", "--profile"):
                profile = word
            continue
        if word in VALUE_OPTIONS:
            skip = True
            continue
        if word.startswith("-") and word:
            continue
        out.append(word)
    return out, profile


def _starting(cur: str, items: list[Candidate]) -> list[Candidate]:
    return [c for c in items if c[0].startswith(cur)]


def candidates(
    line: str, catalogue: apicache.Catalogue | None, live: Any = None
) -> list[Candidate]:
    """What may come next. ``live(api, params)`` answers a list call for id values."""
    words = split_line(line)
    if words and (words[0] == "cumulo" or words[0].endswith("/cumulo")):
        words = words[1:]
    cur = words[-1] if words else ""
    before, _ = _strip_options(words[:-1])
    verbs = catalogue.verbs() if catalogue else []
    if not before:
        top = [(v, "API verb") for v in verbs]
        top += [(c, "cumulo command") for c in OPERATOR_COMMANDS + CLIENT_COMMANDS]
        return _starting(cur, sorted(set(top)))
    first = before[0]
    if first == "profile":
        if len(before) == 1:
            return _starting(cur, [(a, "profile action") for a in PROFILE_ACTIONS])
        if before[1] in ("use", "remove", "show"):
            names = sorted(load_config().profiles)
            return _starting(cur, [(n, "profile") for n in names])
        return []
    if first == "completion":
        return _starting(cur, [("bash", "shell"), ("zsh", "shell")]) if len(before) == 1 else []
    if catalogue is None:
        return []
    if first == "help":
        before = before[1:]
        if not before:
            return _starting(cur, [(v, "API verb") for v in verbs])
        if len(before) == 1:
            return _starting(cur, [(n, "noun") for n in catalogue.nouns(before[0])])
        return []
    if first == "api":
        if len(before) == 1:
            return _starting(cur, [(a.name, a.description[:60]) for a in catalogue.apis.values()])
        api = catalogue.named(before[1])
        given = before[2:]
    else:
        if len(before) == 1:
            return _starting(cur, [(n, "noun") for n in catalogue.nouns(first)])
        api = catalogue.find(first, before[1])
        given = before[2:]
    if api is None:
        return []
    if "=" in cur:
        return _values(api, cur, catalogue, live)
    taken = {w.split("=", 1)[0].lower() for w in given}
    params = [
        (f"{p.name}=", ("(required) " if p.required else "") + p.description[:70])
        for p in api.params
        if p.name.lower() not in taken
    ]
    return _starting(cur, params)


def _related(api: apicache.Api, name: str, catalogue: apicache.Catalogue) -> apicache.Api | None:
    param = api.param(name)
    if param is not None and param.related:
        found = catalogue.named(param.related.split(",")[0])
        if found is not None:
            return found
    if not name.lower().endswith("id"):
        return None
    noun = name.lower()[:-2] or api.noun
    noun = noun.removesuffix("s")
    for guess in (f"{noun}s", f"{noun}es", noun, noun.removesuffix("y") + "ies"):
        found = catalogue.find("list", guess)
        if found is not None:
            return found
    return None


def _values(
    api: apicache.Api, cur: str, catalogue: apicache.Catalogue, live: Any
) -> list[Candidate]:
    key = cur.partition("=")[0]
    param = api.param(key)
    if param is not None and param.type == "boolean":
        return _starting(cur, [(f"{key}=true", ""), (f"{key}=false", "")])
    related = _related(api, key, catalogue)
    if related is None or live is None:
        return []
    params = {"listall": "true"} if related.param("listall") else {}
    for p in related.params:
        if p.required and p.name.endswith("filter"):
            params[p.name] = "executable" if "template" in p.name else "all"
    try:
        rows = live(related.name, params)
    except (ApiError, httpx.HTTPError, ProfileError):
        return []
    out: list[Candidate] = []
    for row in rows:
        if "id" not in row:
            continue
        label = next((str(row[f]) for f in NAME_FIELDS if row.get(f)), "")
        out.append((f"{key}={row['id']}", label))
    return [c for c in out if c[0].startswith(cur)]
