package gateward.spiffe_test

import rego.v1

import data.gateward.spiffe as sp

# A SPIRE JWT-SVID of the payments deployer, for the Envoy gateway.
deployer := {
	"sub": "spiffe://prod.acme.example/ns/payments/sa/deployer",
	"aud": ["spiffe://prod.acme.example/envoy/gateway"],
	"iss": "https://oidc.prod.acme.example",
	"iat": 1790000000,
	"exp": 1790000300,
}

tok(claims) := {
	"token": {"issuer": "spire", "header": {"alg": "ES256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "POST", "path": "/payments/refunds", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

with_sub(s) := tok(object.union(deployer, {"sub": s}))

rule := {
	"trust_domain": "prod.acme.example",
	"path_prefixes": ["/ns/payments"],
	"audience": "spiffe://prod.acme.example/envoy/gateway",
}

test_deployer_allowed if {
	sp.allowed(rule) with input as tok(deployer)
	sp.trust_domain_is("prod.acme.example") with input as tok(deployer)
	sp.path_has_prefix("/ns/payments/sa") with input as tok(deployer)
}

test_parse_id if {
	sp.parse_id("spiffe://prod.acme.example/ns/payments/sa/deployer") == {
		"trust_domain": "prod.acme.example",
		"path": "/ns/payments/sa/deployer",
		"segments": ["ns", "payments", "sa", "deployer"],
	}
	sp.parse_id("spiffe://prod.acme.example") == {"trust_domain": "prod.acme.example", "path": "", "segments": []}
}

test_parse_id_rejects_malformed if {
	not sp.parse_id("spiffe://prod.acme.example/ns/../admin") # dot-dot segment
	not sp.parse_id("spiffe://prod.acme.example/ns/./payments") # dot segment
	not sp.parse_id("spiffe://prod.acme.example/ns//payments") # empty segment
	not sp.parse_id("spiffe://prod.acme.example/ns/payments/") # trailing slash
	not sp.parse_id("spiffe://prod.acme.example:8443/ns/payments") # port
	not sp.parse_id("spiffe://user@prod.acme.example/ns/payments") # user info
	not sp.parse_id("spiffe://Prod.Acme.Example/ns/payments") # upper-case trust domain
	not sp.parse_id("SPIFFE://prod.acme.example/ns/payments") # upper-case scheme
	not sp.parse_id("spiffe:///ns/payments") # empty trust domain
	not sp.parse_id("spiffe://prod.acme.example/ns/payments?x=1") # query
	not sp.parse_id("spiffe://prod.acme.example/ns/payments#x") # fragment
	not sp.parse_id("spiffe://prod.acme.example/ns/%2e%2e/admin") # percent-encoding
	not sp.parse_id("https://prod.acme.example/ns/payments") # another scheme
	not sp.parse_id(" spiffe://prod.acme.example/ns/payments") # leading space
	not sp.parse_id(null)
}

test_other_trust_domain_denied if {
	not sp.allowed(rule) with input as with_sub("spiffe://staging.acme.example/ns/payments/sa/deployer")
	sp.denial(rule) == "SPIFFE ID spiffe://staging.acme.example/ns/payments/sa/deployer is not in trust domain prod.acme.example" with input as with_sub("spiffe://staging.acme.example/ns/payments/sa/deployer")
}

test_trust_domain_with_same_prefix_denied if {
	# Starts with the same characters, but is another trust domain.
	not sp.allowed(rule) with input as with_sub("spiffe://prod.acme.example.evil.com/ns/payments/sa/deployer")
	not sp.allowed(rule) with input as with_sub("spiffe://prod.acme.examplex/ns/payments/sa/deployer")
	# The trust domain's name placed in the path of another.
	not sp.allowed(rule) with input as with_sub("spiffe://evil.example/prod.acme.example/ns/payments")
}

test_path_prefix_trick_denied if {
	r := object.union(rule, {"path_prefixes": ["/ns/ci"]})
	sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns/ci")
	sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns/ci/sa/runner")
	not sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns/ci-evil/sa/runner")
	sp.denial(r) == "SPIFFE ID spiffe://prod.acme.example/ns/ci-evil/sa/runner is not allowed" with input as with_sub("spiffe://prod.acme.example/ns/ci-evil/sa/runner")
	not sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns")
}

test_dot_dot_escape_denied if {
	not sp.allowed(rule) with input as with_sub("spiffe://prod.acme.example/ns/payments/../admin")
	sp.denial(rule) == "subject spiffe://prod.acme.example/ns/payments/../admin is not a valid SPIFFE ID" with input as with_sub("spiffe://prod.acme.example/ns/payments/../admin")
}

test_exact_ids if {
	r := {"trust_domain": "prod.acme.example", "ids": ["spiffe://prod.acme.example/ns/payments/sa/deployer"]}
	sp.allowed(r) with input as tok(deployer)
	not sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns/payments/sa/deployer2")
	not sp.allowed(r) with input as with_sub("spiffe://prod.acme.example/ns/payments/sa/deployer/x")
}

test_multi_audience_denied if {
	multi := object.union(deployer, {"aud": ["spiffe://prod.acme.example/envoy/gateway", "spiffe://prod.acme.example/other"]})
	not sp.allowed(rule) with input as tok(multi)
	sp.denial(rule) == "the token has several audiences" with input as tok(multi)
	sp.allowed(object.union(rule, {"single_audience": false})) with input as tok(multi)
}

test_string_audience_accepted if {
	sp.allowed(rule) with input as tok(object.union(deployer, {"aud": "spiffe://prod.acme.example/envoy/gateway"}))
}

test_other_audience_denied if {
	other := object.union(deployer, {"aud": ["spiffe://prod.acme.example/envoy/internal"]})
	not sp.allowed(rule) with input as tok(other)
	sp.denial(rule) == "audience spiffe://prod.acme.example/envoy/gateway is not in the token" with input as tok(other)
}

test_misconfigured_rules_deny if {
	td_only := {"trust_domain": "prod.acme.example"}
	not sp.allowed(td_only) with input as tok(deployer)
	sp.denial(td_only) == "rule misconfigured: ids or path_prefixes is required" with input as tok(deployer)

	scheme := {"trust_domain": "spiffe://prod.acme.example", "path_prefixes": ["/ns/payments"]}
	not sp.allowed(scheme) with input as tok(deployer)

	bad_prefix := {"trust_domain": "prod.acme.example", "path_prefixes": ["ns/payments"]}
	not sp.allowed(bad_prefix) with input as tok(deployer)

	root := {"trust_domain": "prod.acme.example", "path_prefixes": ["/"]}
	not sp.allowed(root) with input as tok(deployer)

	foreign_id := {"trust_domain": "prod.acme.example", "ids": ["spiffe://other.example/ns/payments/sa/deployer"]}
	not sp.allowed(foreign_id) with input as tok(deployer)
	contains(sp.denial(foreign_id), "is not a SPIFFE ID in trust domain prod.acme.example") with input as tok(deployer)
}
