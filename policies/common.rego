# Shared helpers for the provider libraries and the examples: value checks, rule-field
# validation, audiences, token age, and the route table (`data.routes`).
#
# Every helper fails closed: a missing or mistyped value makes it undefined (never true), and no
# builtin is ever called on a value of the wrong type (regorus raises an error where OPA would be
# undefined, so guarding types keeps both engines' answers the same).
package gateward.common

import rego.v1

claims := input.token.claims

# --- values -------------------------------------------------------------------------------

# `x` is a non-empty string of decimal digits (GitHub, GitLab ids arrive as such strings).
digits(x) if {
	is_string(x)
	x != ""
	trim_left(x, "0123456789") == ""
}

# `x` is a lower-case UUID string (CircleCI org and project ids, Buildkite ids).
uuid_string(x) if {
	is_string(x)
	regex.match(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, x)
}

# `x` is an array of strings (possibly empty).
strings_list(x) if {
	is_array(x)
	every e in x {
		is_string(e)
	}
}

# `rule[key]` is a non-empty array: the rule constrains `key`. An empty list counts as absent.
constrains(rule, key) if {
	v := object.get(rule, key, [])
	is_array(v)
	count(v) > 0
}

# `value` is a string equal to one of the strings in `list`.
one_of(value, list) if {
	is_string(value)
	is_array(list)
	some v in list
	v == value
}

# `value` is a string matching one of the glob `patterns` (`*` and `?` stop at `/`).
glob_one_of(value, patterns) if {
	is_string(value)
	is_array(patterns)
	some p in patterns
	is_string(p)
	glob.match(p, ["/"], value)
}

# `value` matches the regular expression `pattern` as a whole: the pattern is anchored here, so
# `acme/.*` does not match `evil/acme/x`.
anchored_match(pattern, value) if {
	is_string(pattern)
	is_string(value)
	regex.match(concat("", ["^(?:", pattern, ")$"]), value)
}

# `pattern` compiles as an anchored regular expression on this engine (regorus has no `(?i)`).
valid_pattern(pattern) if {
	is_string(pattern)
	regex.is_valid(concat("", ["^(?:", pattern, ")$"]))
}

# A claim for a message: its value, or "(missing)".
show(name) := object.get(claims, name, "(missing)")

# --- rules (the provider-specific objects inside a route) ---------------------------------

# Problems with a rule object, for the `rule_problems` of each provider: fields that are not in
# `known` (a typo such as `branch` for `branches` would otherwise drop a constraint silently), and
# `list_fields` that are present but not arrays of strings.
field_problems(rule, known, list_fields) := problems if {
	is_object(rule)
	unknown := {sprintf("unknown field %q", [k]) | some k in object.keys(rule); not k in known}
	bad_lists := {sprintf("%s must be a list of strings", [k]) |
		some k
		v := rule[k]
		k in list_fields
		not strings_list(v)
	}
	problems := unknown | bad_lists
}

field_problems(rule, _, _) := {"the rule must be an object"} if not is_object(rule)

# `rule[key]`, when present, is `true` or `false`.
bool_field_problems(rule, keys) := {sprintf("%s must be true or false", [k]) |
	some k
	v := rule[k]
	k in keys
	not is_boolean(v)
}

# --- audiences and time -------------------------------------------------------------------

# The token's audiences as a set (`aud` may be a string or an array).
audiences := {a | a := claims.aud; is_string(a)} | {a | is_array(claims.aud); some a in claims.aud; is_string(a)}

# The token carries exactly one audience (multi-audience tokens can be replayed between them).
single_audience if is_string(claims.aud)

single_audience if {
	is_array(claims.aud)
	count(claims.aud) == 1
	is_string(claims.aud[0])
}

# Seconds since the token was issued, by the host clock `input.now`.
token_age := input.now - claims.iat if {
	is_number(input.now)
	is_number(claims.iat)
}

# The token was issued at most `seconds` ago (and not in the future beyond one minute).
issued_within(seconds) if {
	is_number(seconds)
	token_age <= seconds
	token_age >= -60
}

# --- requests and routes ------------------------------------------------------------------
#
# A route: {"name": "...", "path_prefix": "/deploy", "methods": ["POST"], "issuer": "github",
#           "<provider>": {rule}}
# `issuer` is the configured issuer *name* (input.token.issuer). `methods` is required; ["*"]
# allows every method. The prefix matches whole path segments: "/deploy" covers "/deploy" and
# "/deploy/x", never "/deployment". The most specific matching routes (most prefix segments)
# govern a request; a broader route never widens what a narrower one allows.

# The path is in canonical form: starts with "/", no empty segments except a trailing "/",
# no "." or ".." segments (also percent-encoded, or with `;` parameters: "..;x"), no `;` at all,
# no encoded ".", "/", "\" or control character, no "\" or control character. The gate refuses
# most of these before the policy runs (`path_ambiguous`, docs/policies.md); `;` is refused here
# too because Tomcat, Jetty and Spring strip `;parameters` from every segment, so
# "/deploy/payments;x" would otherwise match a broader route than the one the upstream serves.
# (String builtins rather than regular expressions where they do: this runs for every route on
# every request.)
clean_path(p) if {
	is_string(p)
	startswith(p, "/")
	not contains(p, "//")
	not contains(p, "\\")
	not contains(p, ";")
	not regex.match(`[[:cntrl:]]`, p)
	lowered := lower(p)
	not contains(lowered, "%2e")
	not contains(lowered, "%2f")
	not contains(lowered, "%5c")
	not regex.match(`%(?:[01][0-9a-f]|7f)`, lowered)
	not _dot_segment(lowered)
}

# A "." or ".." segment, also with `;` parameters (defence in depth: `;` is refused above).
_dot_segment(p) if {
	some s in split(p, "/")
	split(s, ";")[0] in {".", ".."}
}

# The non-empty segments of a clean path: "/a/b/" → ["a", "b"].
segments(p) := [s | some s in split(p, "/"); s != ""]

# Path `p` is `prefix` or below it, segment by segment.
path_under(p, prefix) if {
	clean_path(p)
	clean_path(prefix)
	_segments_under(segments(p), segments(prefix))
}

_segments_under(xs, ps) if {
	count(ps) <= count(xs)
	array.slice(xs, 0, count(ps)) == ps
}

# The request path's segments when it is clean (a rule: computed once per request).
_request_segments := segments(input.request.path) if clean_path(input.request.path)

# The method is an upper-case RFC 9110 token, as the gate lets through (`method_invalid`
# otherwise): `post` would match no POST route but could match a broad "*" one, while Django or
# Flask upstream serve it as POST.
valid_method(m) if {
	is_string(m)
	regex.match("^[!#$%&'*+.^_`|~0-9A-Z-]+$", m)
}

method_allowed(route) if {
	valid_method(input.request.method)
	strings_list(route.methods)
	some m in route.methods
	m in {"*", input.request.method}
}

# The route's own fields are well formed.
route_valid(route) if {
	is_object(route)
	is_string(route.name)
	is_string(route.issuer)
	clean_path(route.path_prefix)
	strings_list(route.methods)
	count(route.methods) > 0
}

# Routes whose path prefix and methods match the request.
matching_routes := [r |
	is_array(data.routes)
	some r in data.routes
	route_valid(r)
	_segments_under(_request_segments, segments(r.path_prefix))
	method_allowed(r)
]

# The most specific of them: those with the most prefix segments.
selected_routes := [r |
	depth := max({count(segments(m.path_prefix)) | some m in matching_routes})
	some r in matching_routes
	count(segments(r.path_prefix)) == depth
]

# The selected routes that take tokens from this request's issuer and carry a `provider` rule.
routes_for(provider) := [r |
	some r in selected_routes
	r.issuer == input.token.issuer
	is_object(object.get(r, provider, null))
]

invalid_route_names := [n |
	is_array(data.routes)
	some i
	r := data.routes[i]
	not route_valid(r)
	n := route_label(i, r)
]

route_label(_, r) := r.name if {
	is_object(r)
	is_string(r.name)
}

route_label(i, r) := sprintf("routes[%d]", [i]) if not _named(r)

_named(r) if {
	is_object(r)
	is_string(r.name)
}

_invalid_note := "" if count(invalid_route_names) == 0

_invalid_note := sprintf(" (misconfigured routes ignored: %s)", [concat(", ", invalid_route_names)]) if {
	count(invalid_route_names) > 0
}

# Why no route of a provider applies; used when no example's routes take this request.
unrouted_reason := sprintf("request path %q is not in canonical form", [input.request.path]) if {
	not clean_path(input.request.path)
} else := sprintf("request method %s is not an upper-case token", [json.marshal(input.request.method)]) if {
	not valid_method(input.request.method)
} else := sprintf("no route for %v %v%s", [input.request.method, input.request.path, _invalid_note]) if {
	count(selected_routes) == 0
} else := sprintf("route %s does not accept tokens from issuer %q", [concat(", ", [r.name | some r in selected_routes]), input.token.issuer])
