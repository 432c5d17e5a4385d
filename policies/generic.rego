# Any OIDC issuer: allow-lists of issuers, subjects and audiences, plus exact or pattern checks on
# other claims, from data. For issuers without a package of their own (Jenkins, Bitbucket, Azure
# DevOps, HCP Terraform, Google, ...); for the CI providers above prefer their packages, which
# know which claims are immutable.
#
# A rule (the `generic` object of a route in `data.routes`):
#
#   issuers           required  exact `iss` values (no normalisation: a trailing `/` differs)
#   subjects          } at least one: exact `sub` values, or regular expressions matched against
#   subject_patterns  } the whole `sub` (anchored here: `org/.*` never matches `evil/org/x`)
#   audiences         optional  the token must carry one of these audiences
#   single_audience   optional  true: refuse tokens with several audiences
#   claims            optional  {claim: exact value}; the value's JSON type must match too
#   claim_patterns    optional  {claim: regular expression}, anchored; the claim must be a string
#                               or a boolean (compared as "true"/"false"), else it fails
#   max_age_seconds   optional  issued at most this long ago (input.now)
#
# A missing claim never matches, and an empty `claims` or `claim_patterns` adds no constraint.
package gateward.generic

import rego.v1

import data.gateward.common

claims := input.token.claims

known_fields := {
	"issuers", "subjects", "subject_patterns", "audiences", "single_audience", "claims",
	"claim_patterns", "max_age_seconds",
}

list_fields := {"issuers", "subjects", "subject_patterns", "audiences"}

# --- helpers ------------------------------------------------------------------------------

issuer_allowed(rule) if common.one_of(claims.iss, rule.issuers)

subject_allowed(rule) if common.one_of(claims.sub, object.get(rule, "subjects", []))

subject_allowed(rule) if {
	some p in object.get(rule, "subject_patterns", [])
	common.anchored_match(p, claims.sub)
}

audience_allowed(rule) if {
	single_audience_ok(rule)
	audience_listed(rule)
}

audience_listed(rule) if not common.constrains(rule, "audiences")

audience_listed(rule) if {
	some a in rule.audiences
	a in common.audiences
}

single_audience_ok(rule) if not rule.single_audience == true

single_audience_ok(_) if common.single_audience

# A claim as a string for pattern matching: strings as they are, booleans as "true"/"false".
claim_string(name) := claims[name] if is_string(claims[name])

claim_string(name) := "true" if claims[name] == true

claim_string(name) := "false" if claims[name] == false

# Claim `name` equals `value` (same JSON type and value).
claim_is(name, value) if claims[name] == value

# Claim `name` matches the anchored regular expression `pattern`.
claim_matches(name, pattern) if common.anchored_match(pattern, claim_string(name))

claims_allowed(rule) if {
	every name, value in _object_or_empty(rule, "claims") {
		claim_is(name, value)
	}
	every name, pattern in _object_or_empty(rule, "claim_patterns") {
		claim_matches(name, pattern)
	}
}

age_ok(rule) if not "max_age_seconds" in object.keys(rule)

age_ok(rule) if common.issued_within(rule.max_age_seconds)

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := common.field_problems(rule, known_fields, list_fields) | _value_problems(rule)

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	iss := {"issuers is required" | not common.constrains(rule, "issuers")}
	sub := {"subjects or subject_patterns is required" |
		not common.constrains(rule, "subjects")
		not common.constrains(rule, "subject_patterns")
	}
	objects := {sprintf("%s must be an object", [k]) |
		some k in ["claims", "claim_patterns"]
		k in object.keys(rule)
		not is_object(rule[k])
	}
	patterns := {sprintf("claim_patterns.%v: %v is not a valid regular expression", [k, p]) |
		some k
		p := _object_or_empty(rule, "claim_patterns")[k]
		not common.valid_pattern(p)
	}
	sub_patterns := {sprintf("subject_patterns: %v is not a valid regular expression", [p]) |
		some p in object.get(rule, "subject_patterns", [])
		is_string(p)
		not common.valid_pattern(p)
	}
	age := {"max_age_seconds must be a positive number" |
		"max_age_seconds" in object.keys(rule)
		not _positive(rule.max_age_seconds)
	}
	bools := common.bool_field_problems(rule, {"single_audience"})
	problems := (((((iss | sub) | objects) | patterns) | sub_patterns) | age) | bools
}

# rule[key] if it is an object, else {} (a non-object is reported by rule_problems).
_object_or_empty(rule, key) := v if {
	v := object.get(rule, key, {})
	is_object(v)
}

_object_or_empty(rule, key) := {} if not is_object(object.get(rule, key, {}))

_positive(x) if {
	is_number(x)
	x > 0
}

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	issuer_allowed(rule)
	subject_allowed(rule)
	audience_allowed(rule)
	claims_allowed(rule)
	age_ok(rule)
}

# Why the rule does not allow the token: the first requirement that fails.
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := sprintf("issuer %v is not allowed", [common.show("iss")]) if {
	not issuer_allowed(rule)
} else := sprintf("subject %v is not allowed", [common.show("sub")]) if {
	not subject_allowed(rule)
} else := "the token has several audiences" if {
	not single_audience_ok(rule)
} else := "the token carries none of the allowed audiences" if {
	not audience_listed(rule)
} else := sprintf("claim %v is %v, not %v", [failing[0], common.show(failing[0]), rule.claims[failing[0]]]) if {
	failing := sort([name | some name; value := _object_or_empty(rule, "claims")[name]; not claim_is(name, value)])
	count(failing) > 0
} else := sprintf("claim %v (%v) does not match %v", [failing[0], common.show(failing[0]), rule.claim_patterns[failing[0]]]) if {
	failing := sort([name | some name; p := _object_or_empty(rule, "claim_patterns")[name]; not claim_matches(name, p)])
	count(failing) > 0
} else := "the token's age is unknown: it has no numeric iat claim" if {
	# Before the next branch, whose message needs the age: an else branch whose value is
	# undefined falls through on OPA but leaves the whole rule undefined on regorus.
	not age_ok(rule)
	not is_number(common.token_age)
} else := sprintf("token issued %v s ago, more than %v s", [common.token_age, rule.max_age_seconds]) if {
	not age_ok(rule)
} else := "the token does not satisfy the rule"
