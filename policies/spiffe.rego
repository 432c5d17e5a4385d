# SPIFFE JWT-SVIDs (SPIRE): `sub` is the workload's SPIFFE ID, spiffe://<trust-domain>/<path>.
#
# A rule (the `spiffe` object of a route in `data.routes`):
#
#   trust_domain     required  exact trust domain, e.g. "prod.acme.example"
#   ids              } at least one: exact SPIFFE IDs, or path prefixes matched segment by
#   path_prefixes    } segment ("/ns/ci" covers /ns/ci and /ns/ci/x, never /ns/ci-evil)
#   audience         optional  the one audience the token must carry (default: any one audience)
#   single_audience  default true: refuse tokens with several audiences (replayable between them)
#
# IDs are parsed strictly: scheme `spiffe` in lower case; a trust domain of lower-case letters,
# digits, `.`, `-`, `_` (so no port, user info or upper case); path segments of letters, digits,
# `.`, `-`, `_`, never empty, `.` or `..`; no query, fragment or percent-encoding; 2048 bytes
# at most. Anything else is not a SPIFFE ID and matches nothing.
package gateward.spiffe

import rego.v1

import data.gateward.common

claims := input.token.claims

known_fields := {"trust_domain", "ids", "path_prefixes", "audience", "single_audience"}

list_fields := {"ids", "path_prefixes"}

# --- parsing ------------------------------------------------------------------------------

valid_trust_domain(td) if {
	is_string(td)
	regex.match(`^[a-z0-9._-]+$`, td)
}

valid_segment(s) if {
	is_string(s)
	regex.match(`^[A-Za-z0-9._-]+$`, s)
	not s in {".", ".."}
}

# The segments of a SPIFFE path ("" or "/a/b"): ["a", "b"]. Undefined if the path is invalid.
path_segments(p) := [] if p == ""

path_segments(p) := segs if {
	is_string(p)
	startswith(p, "/")
	segs := array.slice(split(p, "/"), 1, count(split(p, "/")))
	every s in segs {
		valid_segment(s)
	}
}

# {"trust_domain", "path", "segments"} of SPIFFE ID `s`; undefined if `s` is not one.
parse_id(s) := {"trust_domain": td, "path": path, "segments": segs} if {
	is_string(s)
	count(s) <= 2048
	startswith(s, "spiffe://")
	rest := substring(s, count("spiffe://"), -1)
	slash := indexof(rest, "/")
	td := _trust_domain_part(rest, slash)
	valid_trust_domain(td)
	path := _path_part(rest, slash)
	segs := path_segments(path)
}

_trust_domain_part(rest, slash) := rest if slash == -1

_trust_domain_part(rest, slash) := substring(rest, 0, slash) if slash >= 0

_path_part(_, slash) := "" if slash == -1

_path_part(rest, slash) := substring(rest, slash, -1) if slash >= 0

# The token's SPIFFE ID, parsed.
spiffe_id := parse_id(claims.sub)

# --- helpers ------------------------------------------------------------------------------

# The token's SPIFFE ID is in trust domain `td` (exact: `prod.acme.example.evil` is another).
trust_domain_is(td) if {
	valid_trust_domain(td)
	spiffe_id.trust_domain == td
}

# The token's SPIFFE ID path is `prefix` or below it, segment by segment.
path_has_prefix(prefix) if {
	ps := path_segments(prefix)
	count(ps) > 0
	count(ps) <= count(spiffe_id.segments)
	array.slice(spiffe_id.segments, 0, count(ps)) == ps
}

# The token's SPIFFE ID is exactly `other` (both parsed, so malformed IDs never match).
id_is(other) if {
	o := parse_id(other)
	o == spiffe_id
}

id_allowed(rule) if {
	some x in object.get(rule, "ids", [])
	id_is(x)
}

id_allowed(rule) if {
	some p in object.get(rule, "path_prefixes", [])
	path_has_prefix(p)
}

audience_allowed(rule) if {
	single_audience_ok(rule)
	audience_ok(rule)
}

single_audience_ok(rule) if object.get(rule, "single_audience", true) == false

single_audience_ok(_) if common.single_audience

audience_ok(rule) if not "audience" in object.keys(rule)

audience_ok(rule) if rule.audience in common.audiences

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := common.field_problems(rule, known_fields, list_fields) | _value_problems(rule)

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	td := {"trust_domain must be a trust domain name (lower case, no scheme or port)" |
		not valid_trust_domain(rule.trust_domain)
	}
	which := {"ids or path_prefixes is required" |
		not common.constrains(rule, "ids")
		not common.constrains(rule, "path_prefixes")
	}
	bad_ids := {sprintf("ids: %v is not a SPIFFE ID in trust domain %v", [x, rule.trust_domain]) |
		some x in object.get(rule, "ids", [])
		not parse_id(x).trust_domain == rule.trust_domain
	}
	bad_prefixes := {sprintf("path_prefixes: %v is not a path like /ns/ci", [p]) |
		some p in object.get(rule, "path_prefixes", [])
		not _nonempty_path(p)
	}
	aud := {"audience must be a string" |
		"audience" in object.keys(rule)
		not is_string(rule.audience)
	}
	bools := common.bool_field_problems(rule, {"single_audience"})
	problems := ((((td | which) | bad_ids) | bad_prefixes) | aud) | bools
}

_nonempty_path(p) if count(path_segments(p)) > 0

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	trust_domain_is(rule.trust_domain)
	id_allowed(rule)
	audience_allowed(rule)
}

# Why the rule does not allow the token: the first requirement that fails.
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := sprintf("subject %v is not a valid SPIFFE ID", [common.show("sub")]) if {
	not spiffe_id
} else := sprintf("SPIFFE ID %v is not in trust domain %v", [claims.sub, rule.trust_domain]) if {
	not trust_domain_is(rule.trust_domain)
} else := sprintf("SPIFFE ID %v is not allowed", [claims.sub]) if {
	not id_allowed(rule)
} else := "the token has several audiences" if {
	not single_audience_ok(rule)
} else := sprintf("audience %v is not in the token", [rule.audience]) if {
	not audience_ok(rule)
} else := "the token does not satisfy the rule"
