"""Check a run's config when the workflow starts, with one line per problem a user can act on.

Snakemake's own ``validate`` prints the whole schema and config (hundreds of lines) for a
misspelt key, and values such as a prior family or a scenario's column would only fail minutes
later inside a job. Here each problem is one :class:`ConfigError` naming the config file, the
key, the value and what was expected, with the closest valid key or value when there is one.
"""

import difflib
import os
import re
from pathlib import Path

import jsonschema
import yaml

# Prior families and their parameters, as singlearm.bayes takes them (tests/test_config.py checks
# the two agree; bayes is not imported here because importing PyMC would slow every start).
MU_PRIORS = {"normal": ("mu", "sigma")}
TAU_PRIORS = {"halfnormal": ("sigma",), "halfcauchy": ("beta",)}
KINDS = ("proportion", "median", "survival_rate")


class ConfigError(ValueError):
    """A config problem, reported as ``<file>: key '<a.b.c>': <what is wrong>``."""


# libyaml's safe loader when PyYAML has it (its wheels do): the workflow reads its config and seven
# schemas at every parse, no-op reruns included, and the pure-Python loader took ~0.2 s of that.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path):
    """Read a YAML config file; a syntax error names the file, line and column.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            data = yaml.load(text, Loader=YAML_LOADER)
        except yaml.YAMLError:
            data = yaml.safe_load(text)  # the pure-Python parser names the problem more plainly
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: YAML syntax error: {err.problem or err.context}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top, found {type(data).__name__}")
    return data


def _dotted(path):
    return ".".join(str(p) for p in path)


def _source(keys, files):
    """The last config file that sets ``keys`` (later files override earlier ones)."""
    for f in reversed(files):
        try:
            node = load_yaml(f)
        except ConfigError:
            continue
        for k in keys:
            if isinstance(node, list) and isinstance(k, int) and k < len(node):
                node = node[k]
            elif isinstance(node, dict) and k in node:
                node = node[k]
            else:
                break
        else:
            return str(f)
    return "--config (command line)" if files else "config"


def _near(word, choices):
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _unknown_keys(value, schema, path=()):
    """First key of ``value`` that an ``additionalProperties: false`` part of ``schema`` does not allow."""
    if isinstance(value, list) and isinstance(schema, dict) and "items" in schema:
        for i, item in enumerate(value):
            found = _unknown_keys(item, schema["items"], (*path, i))
            if found:
                return found
    if not isinstance(value, dict) or not isinstance(schema, dict):
        return None
    props = schema.get("properties", {})
    for key, sub in value.items():
        if key in props:
            found = _unknown_keys(sub, props[key], (*path, key))
        elif schema.get("additionalProperties") is False and props:
            return (*path, key), sorted(props)
        elif isinstance(schema.get("additionalProperties"), dict):
            found = _unknown_keys(sub, schema["additionalProperties"], (*path, key))
        else:
            found = None
        if found:
            return found
    return None


def _schema_error(config, schema, files):
    unknown = _unknown_keys(config, schema)
    if unknown:
        keys, allowed = unknown
        where = f"under '{_dotted(keys[:-1])}'" if len(keys) > 1 else "at the top"
        return (f"{_source(keys, files)}: unknown key '{_dotted(keys)}'{_near(keys[-1], allowed)}; "
                f"valid keys {where}: {', '.join(allowed)}")
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    keys = tuple(error.absolute_path)
    meaning = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "enum":
        what = (f"value {error.instance!r}: expected one of {', '.join(map(str, error.validator_value))}"
                f"{_near(error.instance, error.validator_value)}")
    elif error.message.startswith(repr(error.instance)):  # "95 is greater than ..." reads as it stands
        what = f"value {error.message}" + (f" ({meaning})" if meaning else "")
    else:
        what = error.message + (f" ({meaning})" if meaning else "")
    key = f"key '{_dotted(keys)}'" if keys else "the config"
    return f"{_source(keys, files) if keys else (files[-1] if files else 'config')}: {key}: {what}"


def _prior_error(part, keys, families):
    if not isinstance(part, dict):
        return keys, f"expected a prior such as {{dist: {next(iter(families))}, ...}}, found {part!r}"
    dist = part.get("dist")
    if dist not in families:
        return (*keys, "dist"), (f"value {dist!r}: expected a prior family, one of "
                                 f"{', '.join(families)}{_near(dist, families)}")
    need = families[dist]
    for extra in sorted(set(part) - {"dist", *need}):
        return (*keys, extra), f"unknown parameter of a {dist} prior{_near(extra, need)}; it takes {', '.join(need)}"
    for p in need:
        if p not in part:
            return keys, f"a {dist} prior needs '{p}'"
        value = part[p]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
                or abs(value) == float("inf") or (p in ("sigma", "beta") and value <= 0):
            return (*keys, p), f"value {value!r}: expected a finite number" + (" > 0" if p != "mu" else "")
    return None


def _priors_error(config):
    bayes = config.get("bayes") or {}
    sets = [(("bayes", "priors"), bayes.get("priors") or {})]
    for keys, spec in sets:
        if not isinstance(spec, dict):
            return keys, f"expected per-kind priors ({', '.join(KINDS)}), found {spec!r}"
        # One set {mu, tau} for every fit is allowed too (singlearm.bayes.stage.main_priors).
        by_kind = {None: spec} if spec and set(spec) <= {"mu", "tau"} else spec
        for kind, parts in by_kind.items():
            kind_keys = keys if kind is None else (*keys, kind)
            if kind is not None and kind not in KINDS:
                return (*keys, kind), f"unknown kind{_near(kind, KINDS)}; priors are given per kind: {', '.join(KINDS)}"
            if not isinstance(parts, dict):
                return kind_keys, f"expected mu and/or tau priors, found {parts!r}"
            for name, part in parts.items():
                families = {"mu": MU_PRIORS, "tau": TAU_PRIORS}.get(name)
                if families is None:
                    return (*kind_keys, name), f"unknown parameter{_near(name, ('mu', 'tau'))}; priors are set for mu and tau"
                found = _prior_error(part, (*kind_keys, name), families)
                if found:
                    return found
    return None


def _scenario_error(config, columns):
    scenarios = (config.get("sensitivity") or {}).get("scenarios") or []
    for i, sc in enumerate(scenarios):
        for rule in ("keep", "drop", "drop_matching"):
            for column, value in (sc.get(rule) or {}).items():
                keys = ("sensitivity", "scenarios", i, rule, column)
                if column not in columns:
                    return keys, (f"scenario '{sc.get('id')}': no column '{column}' in analysis_data.csv"
                                  f"{_near(column, columns)}; its columns: {', '.join(columns)}")
                if rule == "drop_matching":
                    try:
                        re.compile(value)
                    except re.error as err:
                        return keys, f"scenario '{sc.get('id')}': value {value!r}: expected a regular expression ({err})"
    return None


def _p0_error(config):
    """A ``bias.p0`` for an outcome that is not a rate (a benchmark proportion has no meaning for a median)."""
    from . import outcomes   # the outcome vocabulary, no heavy imports

    for outcome in ((config.get("bias") or {}).get("p0") or {}):
        keys = ("bias", "p0", outcome)
        try:
            kind = outcomes.kind(outcome)
        except ValueError as err:
            return keys, f"unknown outcome: {err}"
        if kind not in (outcomes.PROPORTION, outcomes.SURVIVAL_RATE):
            return keys, (f"a benchmark rate p0 is defined for proportions and survival rates; '{outcome}' is a "
                          f"{kind}")
    return None


def check_config(config, schema, files=(), analysis_columns=()):
    """Check a config against its schema and the values jobs would only reject later.

    Parameters
    ----------
    config : dict
        The merged config (Snakemake's ``config``), before defaults are filled in.
    schema : dict
        The config schema (``workflow/schemas/config.schema.yaml``).
    files : sequence of str or Path
        The config files in the order they were loaded, to say which one holds a bad key.
    analysis_columns : sequence of str
        Columns of ``analysis_data.csv``, the ones a sensitivity scenario may select on.

    Raises
    ------
    ConfigError
        One line: ``<file>: key '<a.b>': ...``, or ``<file>: unknown key 'x' (did you mean 'y'?)``.
    """
    files = [str(f) for f in files]
    message = _schema_error(config, schema, files)
    if message:
        raise ConfigError(message)
    for found in (_priors_error(config), _scenario_error(config, list(analysis_columns)), _p0_error(config)):
        if found:
            keys, what = found
            raise ConfigError(f"{_source(keys, files)}: key '{_dotted(keys)}': {what}")


def data_paths(config, files, default_dir):
    """Each configured sheet's path, relative paths taken from the directory of the config file
    that names them (``default_dir`` for ones given on the command line), ``~`` expanded.

    Parameters
    ----------
    config : dict
        The merged config.
    files : sequence of str or Path
        The config files in load order.
    default_dir : str or Path
        Directory for paths not set by a config file (``--config data=...``).

    Returns
    -------
    dict
        Sheet key -> absolute Path, or None for an optional sheet left out.
    """
    out = {}
    for key, value in (config.get("data") or {}).items():
        if not value:
            out[key] = None
            continue
        source = _source(("data", key), [str(f) for f in files])
        base = Path(source).resolve().parent if source in [str(f) for f in files] else Path(default_dir)
        path = Path(os.path.expanduser(str(value)))
        out[key] = path if path.is_absolute() else base / path
    return out


def moderators(config):
    """The config's ``moderators`` as ``(columns, {column: reference})``.

    Parameters
    ----------
    config : dict

    Returns
    -------
    (list of str, dict)
    """
    columns, reference = [], {}
    for item in config.get("moderators") or []:
        if isinstance(item, dict):
            columns.append(item["column"])
            if item.get("reference") is not None:
                reference[item["column"]] = item["reference"]
        else:
            columns.append(item)
    return columns, reference


def check_moderators(config, studies, files=(), studies_path="the study table"):
    """Stop at start when ``moderators`` names a column the study table lacks, a reference level
    that does not occur, or a moderator constant within the data (nothing to regress on).

    Parameters
    ----------
    config : dict
    studies : pandas.DataFrame
        The study table.
    files : sequence of str or Path
        Config files in load order.
    studies_path : str
        Path of the study table, for the message.

    Raises
    ------
    ConfigError
        ``<file>: key 'moderators[i]': ...`` naming the column, its value(s) and what is allowed.
    """
    from . import metareg   # numpy/pandas only; kept local so the config check stays light

    columns, reference = moderators(config)
    files = [str(f) for f in files]
    # the sheet reader keeps each cell's text in '<column>__text' and the sheet row in source_row
    own = [c for c in studies.columns if not str(c).endswith("__text") and c != "source_row"]
    for i, col in enumerate(columns):
        keys = ("moderators", i)
        where = f"{_source(keys, files)}: key 'moderators[{i}]'"
        if col not in own:
            raise ConfigError(f"{where}: value {col!r}: no such column in {studies_path}{_near(col, own)}; "
                              f"expected one of its columns: {', '.join(map(str, own))}")
        try:
            metareg.design(studies, [col], {col: str(reference[col])} if col in reference else None,
                           what=f"study table {studies_path}")
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None


def check_subgroup_levels(config, studies, files=(), studies_path="the study table"):
    """Stop at start when ``subgroup_levels`` does not list exactly the study table's subgroup values,
    or gives two of them one label (their rows would read as one subgroup).

    Parameters
    ----------
    config : dict
        The merged config; nothing is checked when ``subgroup_levels`` is absent or empty.
    studies : pandas.DataFrame
        The study table; its ``subgroup_column`` holds each cohort's value.
    files : sequence of str or Path
        Config files in load order.
    studies_path : str
        Path of the study table, for the message.

    Raises
    ------
    ConfigError
        ``<file>: key 'subgroup_levels...': ...`` naming the value, the column and the values allowed.
    """
    levels = config.get("subgroup_levels") or {}
    column = config.get("subgroup_column", "histology")
    if not levels or column not in studies.columns:   # a missing column is the sheet check's message
        return
    values = [str(v) for v in dict.fromkeys(studies[column])]
    files = [str(f) for f in files]
    listed = [str(k) for k in levels if str(k) != "overall"]   # "overall" may be relabelled, it is no value
    for value in values:
        if value not in listed:
            keys = ("subgroup_levels",)
            raise ConfigError(f"{_source(keys, files)}: key 'subgroup_levels': {studies_path} has {column} "
                              f"{value!r}, which it does not list{_near(value, listed)}; list every value "
                              f"({', '.join(values)}) with its display label")
    for key in listed:
        if key not in values:
            keys = ("subgroup_levels", key)
            raise ConfigError(f"{_source(keys, files)}: key 'subgroup_levels.{key}': no cohort in {studies_path} "
                              f"has {column} {key!r}{_near(key, values)}; its values are {', '.join(values)}")
    labels = [str(v).strip() for v in levels.values()]
    twice = next((lab for lab in labels if labels.count(lab) > 1), None)
    if twice is not None:
        keys = ("subgroup_levels",)
        raise ConfigError(f"{_source(keys, files)}: key 'subgroup_levels': label {twice!r} is given to "
                          f"{' and '.join(str(k) for k, v in levels.items() if str(v).strip() == twice)}; "
                          "each subgroup needs its own label")
