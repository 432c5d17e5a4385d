package gateward.examples.buildkite_deploy_test

import rego.v1

import data.gateward.examples.buildkite_deploy as example
import data.gateward.examples.fixtures_test as fx

routes := fx.buildkite_routes

deploy := fx.buildkite_deploy

req(claims, method, path) := {
	"token": {"issuer": "buildkite", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

decide(claims, method, path) := d if {
	d := example.decision with input as req(claims, method, path) with data.routes as routes
}

test_main_deploy_allowed if {
	d := decide(deploy, "POST", "/deploy/payments")
	d.allow == true
	d.reason == "route payments-deploy-buildkite: acme-inc/payments-deploy build 1542"
	d.headers == {
		"x-gateward-route": "payments-deploy-buildkite",
		"x-ci-pipeline": "acme-inc/payments-deploy",
		"x-ci-build-number": "1542",
		"x-ci-commit": "9f3182061f1e2cca4702c368cbc039b7dc9d4485",
	}
}

test_other_organization_denied if {
	other := object.union(deploy, {"organization_slug": "evil-inc", "organization_id": "00000000-103e-4d28-97a1-3b8616a0994d"})
	d := decide(other, "POST", "/deploy/payments")
	d == {"allow": false, "reason": "route payments-deploy-buildkite: organization evil-inc (id 00000000-103e-4d28-97a1-3b8616a0994d) is not the pinned organization"}
}

test_organization_id_not_requested_denied if {
	d := decide(object.remove(deploy, ["organization_id"]), "POST", "/deploy/payments")
	d.allow == false
	contains(d.reason, "--claim organization_id")
}

test_tag_build_denied if {
	d := decide(object.union(deploy, {"build_tag": "main"}), "POST", "/deploy/payments")
	d == {"allow": false, "reason": "route payments-deploy-buildkite: branch main (tag main) is not an allowed branch or tag"}
}

test_other_step_denied if {
	d := decide(object.union(deploy, {"step_key": "tests"}), "POST", "/deploy/payments")
	d == {"allow": false, "reason": "route payments-deploy-buildkite: step_key tests is not allowed"}
}

test_scheduled_build_denied if {
	d := decide(object.union(deploy, {"build_source": "schedule"}), "POST", "/deploy/payments")
	d == {"allow": false, "reason": "route payments-deploy-buildkite: build_source schedule is not allowed"}
}
