package gateward.generic_test

import rego.v1

import data.gateward.generic as gen

# An HCP Terraform apply run token, as an issuer without a package of its own.
tfc := {
	"iss": "https://app.terraform.io",
	"sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:apply",
	"aud": "https://my-proxy.example.com",
	"terraform_organization_id": "org-AbCdEf123456",
	"terraform_workspace_id": "ws-XyZ987654321",
	"terraform_run_phase": "apply",
	"terraform_full_workspace": "organization:acme:project:platform:workspace:payments-prod",
	"iat": 1790000000,
	"nbf": 1789999995,
	"exp": 1790007200,
}

tok(claims) := {
	"token": {"issuer": "tfc", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "PUT", "path": "/secrets/payments", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

rule := {
	"issuers": ["https://app.terraform.io"],
	"subjects": ["organization:acme:project:platform:workspace:payments-prod:run_phase:apply"],
	"audiences": ["https://my-proxy.example.com"],
	"claims": {"terraform_organization_id": "org-AbCdEf123456"},
}

pattern_rule := {
	"issuers": ["https://app.terraform.io"],
	"subject_patterns": [`organization:acme:project:platform:workspace:[a-z-]+:run_phase:apply`],
	"claim_patterns": {"terraform_workspace_id": `ws-[A-Za-z0-9]+`},
	"claims": {"terraform_organization_id": "org-AbCdEf123456"},
}

test_exact_rule_allows if {
	gen.allowed(rule) with input as tok(tfc)
	gen.issuer_allowed(rule) with input as tok(tfc)
	gen.claim_is("terraform_run_phase", "apply") with input as tok(tfc)
}

test_pattern_rule_allows if {
	gen.allowed(pattern_rule) with input as tok(tfc)
}

test_other_issuer_denied if {
	other := object.union(tfc, {"iss": "https://tfe.evil.example"})
	not gen.allowed(rule) with input as tok(other)
	gen.denial(rule) == "issuer https://tfe.evil.example is not allowed" with input as tok(other)
	slash := object.union(tfc, {"iss": "https://app.terraform.io/"})
	not gen.allowed(rule) with input as tok(slash)
}

test_plan_phase_denied if {
	plan := object.union(tfc, {"sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:plan", "terraform_run_phase": "plan"})
	not gen.allowed(rule) with input as tok(plan)
	not gen.allowed(pattern_rule) with input as tok(plan)
	gen.denial(rule) == "subject organization:acme:project:platform:workspace:payments-prod:run_phase:plan is not allowed" with input as tok(plan)
}

test_patterns_are_anchored if {
	# The pattern matches a substring of this subject, but not the whole of it.
	evil := object.union(tfc, {"sub": "organization:evil:x:organization:acme:project:platform:workspace:payments-prod:run_phase:apply"})
	not gen.allowed(pattern_rule) with input as tok(evil)
	suffix := object.union(tfc, {"sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:apply:extra"})
	not gen.allowed(pattern_rule) with input as tok(suffix)
	# An alternation cannot escape the anchors either.
	gen.claim_matches("terraform_run_phase", "plan|apply") with input as tok(tfc)
	not gen.claim_matches("terraform_run_phase", "plan|appl") with input as tok(tfc)
}

test_same_name_other_org_id_denied if {
	# Org name recycled: same subject string, another organization id.
	squat := object.union(tfc, {"terraform_organization_id": "org-Zz9999999999"})
	not gen.allowed(rule) with input as tok(squat)
	gen.denial(rule) == "claim terraform_organization_id is org-Zz9999999999, not org-AbCdEf123456" with input as tok(squat)
}

test_audience_lists if {
	other := object.union(tfc, {"aud": ["https://other.example.com"]})
	not gen.allowed(rule) with input as tok(other)
	gen.denial(rule) == "the token carries none of the allowed audiences" with input as tok(other)
	several := object.union(tfc, {"aud": ["https://other.example.com", "https://my-proxy.example.com"]})
	gen.allowed(rule) with input as tok(several)
	single := object.union(rule, {"single_audience": true})
	not gen.allowed(single) with input as tok(several)
	gen.denial(single) == "the token has several audiences" with input as tok(several)
}

test_claim_types_matter if {
	# An exact claim compares JSON types: "true" is not true.
	r := object.union(rule, {"claims": {"email_verified": true}})
	gen.allowed(r) with input as tok(object.union(tfc, {"email_verified": true}))
	not gen.allowed(r) with input as tok(object.union(tfc, {"email_verified": "true"}))
	# Patterns see booleans as "true"/"false", and refuse numbers and missing claims.
	gen.claim_matches("email_verified", "true") with input as tok(object.union(tfc, {"email_verified": true}))
	not gen.claim_matches("runner_id", "[0-9]+") with input as tok(object.union(tfc, {"runner_id": 12}))
	not gen.claim_matches("absent", ".*") with input as tok(tfc)
}

test_missing_claim_denied if {
	not gen.allowed(rule) with input as tok(object.remove(tfc, ["terraform_organization_id"]))
	not gen.allowed(pattern_rule) with input as tok(object.remove(tfc, ["terraform_workspace_id"]))
	gen.denial(pattern_rule) == "claim terraform_workspace_id ((missing)) does not match ws-[A-Za-z0-9]+" with input as tok(object.remove(tfc, ["terraform_workspace_id"]))
}

test_max_age if {
	r := object.union(rule, {"max_age_seconds": 600})
	gen.allowed(r) with input as tok(tfc)
	late := object.union(tok(tfc), {"now": 1790003700})
	not gen.allowed(r) with input as late
	gen.denial(r) == "token issued 3700 s ago, more than 600 s" with input as late
	# No clock, no answer.
	not gen.allowed(r) with input as object.remove(tok(tfc), ["now"])
	no_iat := tok(object.remove(tfc, ["iat"]))
	not gen.allowed(r) with input as no_iat
	gen.denial(r) == "the token's age is unknown: it has no numeric iat claim" with input as no_iat
}

test_misconfigured_rules_deny if {
	no_subject := {"issuers": ["https://app.terraform.io"]}
	not gen.allowed(no_subject) with input as tok(tfc)
	gen.denial(no_subject) == "rule misconfigured: subjects or subject_patterns is required" with input as tok(tfc)

	bad_regex := object.union(pattern_rule, {"subject_patterns": ["organization:(acme"]})
	not gen.allowed(bad_regex) with input as tok(tfc)
	contains(gen.denial(bad_regex), "is not a valid regular expression") with input as tok(tfc)

	claims_list := object.union(rule, {"claims": ["terraform_organization_id"]})
	not gen.allowed(claims_list) with input as tok(tfc)
	gen.denial(claims_list) == "rule misconfigured: claims must be an object" with input as tok(tfc)

	typo := object.union(rule, {"audience": "https://my-proxy.example.com"})
	not gen.allowed(typo) with input as tok(tfc)
}
