package gateward.examples.generic_api_test

import rego.v1

import data.gateward.examples.generic_api as example
import data.gateward.examples.fixtures_test as fx

routes := fx.generic_routes

apply := fx.generic_apply

req(claims, method, path) := {
	"token": {"issuer": "tfc", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

decide(claims, method, path) := d if {
	d := example.decision with input as req(claims, method, path) with data.routes as routes
}

test_apply_allowed if {
	d := decide(apply, "GET", "/secrets/payments/db")
	d.allow == true
	d.headers["x-oidc-subject"] == "organization:acme:project:platform:workspace:payments-prod:run_phase:apply"
}

test_plan_denied if {
	plan := object.union(apply, {"sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:plan", "terraform_run_phase": "plan"})
	d := decide(plan, "GET", "/secrets/payments/db")
	d == {"allow": false, "reason": "route terraform-secrets: subject organization:acme:project:platform:workspace:payments-prod:run_phase:plan is not allowed"}
}

test_recycled_organization_name_denied if {
	d := decide(object.union(apply, {"terraform_organization_id": "org-Zz9999999999"}), "GET", "/secrets/payments/db")
	d == {"allow": false, "reason": "route terraform-secrets: claim terraform_organization_id is org-Zz9999999999, not org-AbCdEf123456"}
}

test_other_route_path_denied if {
	decide(apply, "GET", "/secrets/payments-archive") == {"allow": false, "reason": "no route for GET /secrets/payments-archive"}
}
