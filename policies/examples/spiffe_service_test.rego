package gateward.examples.spiffe_service_test

import rego.v1

import data.gateward.examples.spiffe_service as example
import data.gateward.examples.fixtures_test as fx

routes := fx.spiffe_routes

svid(sub) := {
	"sub": sub,
	"aud": ["spiffe://prod.acme.example/envoy/gateway"],
	"iss": "https://oidc.prod.acme.example",
	"iat": 1790000000,
	"exp": 1790000300,
}

req(claims, method, path) := {
	"token": {"issuer": "spire", "header": {"alg": "ES256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

decide(sub, method, path) := d if {
	d := example.decision with input as req(svid(sub), method, path) with data.routes as routes
}

test_payments_deployer_allowed if {
	d := decide("spiffe://prod.acme.example/ns/payments/sa/deployer", "POST", "/payments/refunds")
	d.allow == true
	d.headers["x-spiffe-id"] == "spiffe://prod.acme.example/ns/payments/sa/deployer"
}

test_ci_runner_cache_allowed if {
	decide("spiffe://prod.acme.example/ns/ci/sa/runner", "PUT", "/cache/deps.tgz").allow == true
}

test_ci_evil_prefix_denied if {
	d := decide("spiffe://prod.acme.example/ns/ci-evil/sa/runner", "PUT", "/cache/deps.tgz")
	d == {"allow": false, "reason": "route ci-cache: SPIFFE ID spiffe://prod.acme.example/ns/ci-evil/sa/runner is not allowed"}
}

test_ci_runner_cannot_refund if {
	d := decide("spiffe://prod.acme.example/ns/ci/sa/runner", "POST", "/payments/refunds")
	d == {"allow": false, "reason": "route payments-refunds: SPIFFE ID spiffe://prod.acme.example/ns/ci/sa/runner is not allowed"}
}

test_other_trust_domain_denied if {
	d := decide("spiffe://dev.acme.example/ns/payments/sa/deployer", "POST", "/payments/refunds")
	d == {"allow": false, "reason": "route payments-refunds: SPIFFE ID spiffe://dev.acme.example/ns/payments/sa/deployer is not in trust domain prod.acme.example"}
	decide("spiffe://prod.acme.example.attacker.net/ns/payments/sa/deployer", "POST", "/payments/refunds").allow == false
}

test_dot_dot_id_denied if {
	d := decide("spiffe://prod.acme.example/ns/ci/../payments/sa/deployer", "POST", "/payments/refunds")
	d.allow == false
	contains(d.reason, "is not a valid SPIFFE ID")
}
