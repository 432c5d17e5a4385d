package gateward_test

import rego.v1

import data.gateward.examples.fixtures_test as fx

decide(request) := d if {
	d := data.gateward.decision with input as request with data.routes as fx.all_routes
}

test_each_provider_through_the_default_entrypoint if {
	decide(fx.request("github", fx.github_deploy, "POST", "/deploy/payments")).headers["x-gateward-route"] == "payments-deploy"
	decide(fx.request("gitlab", fx.gitlab_deploy, "POST", "/deploy/api")).headers["x-gateward-route"] == "api-deploy"
	decide(fx.request("circleci", fx.circleci_build, "PUT", "/artifacts/api/x")).headers["x-gateward-route"] == "api-artifacts"
	decide(fx.request("buildkite", fx.buildkite_deploy, "POST", "/deploy/payments")).headers["x-gateward-route"] == "payments-deploy-buildkite"
	decide(fx.request("spire", fx.spiffe_svid("spiffe://prod.acme.example/ns/ci/sa/runner"), "GET", "/cache/x")).headers["x-gateward-route"] == "ci-cache"
	decide(fx.request("tfc", fx.generic_apply, "PUT", "/secrets/payments/db")).headers["x-gateward-route"] == "terraform-secrets"
}

test_same_path_two_issuers if {
	# /deploy/payments has a GitHub route and a Buildkite route: each token gets its own rule,
	# and a Buildkite token is never judged by the GitHub rule (or the reverse).
	bad := object.union(fx.buildkite_deploy, {"organization_slug": "evil-inc", "organization_id": "00000000-103e-4d28-97a1-3b8616a0994d"})
	d := decide(fx.request("buildkite", bad, "POST", "/deploy/payments"))
	d.allow == false
	startswith(d.reason, "route payments-deploy-buildkite: organization evil-inc")
	squat := object.union(fx.github_deploy, {"repository_owner_id": "66600666"})
	startswith(decide(fx.request("github", squat, "POST", "/deploy/payments")).reason, "route payments-deploy: repository owner")
}

test_token_from_issuer_without_route if {
	# A valid GitLab token presented on a GitHub-only route.
	d := decide(fx.request("gitlab", fx.gitlab_deploy, "PUT", "/releases/x"))
	d == {"allow": false, "reason": "route releases does not accept tokens from issuer \"gitlab\""}
}

test_unknown_path_denied if {
	decide(fx.request("github", fx.github_deploy, "GET", "/admin")) == {"allow": false, "reason": "no route for GET /admin"}
	decide(fx.request("github", fx.github_deploy, "POST", "/deploy/payments/../../admin")).allow == false
}

test_misconfigured_route_is_reported if {
	broken := array.concat(fx.all_routes, [{"name": "broken", "path_prefix": "admin", "methods": ["GET"], "issuer": "github"}])
	d := data.gateward.decision with input as fx.request("github", fx.github_deploy, "GET", "/admin") with data.routes as broken
	d == {"allow": false, "reason": "no route for GET /admin (misconfigured routes ignored: broken)"}
}

test_no_data_denies if {
	d := data.gateward.decision with input as fx.request("github", fx.github_deploy, "POST", "/deploy/payments")
	d == {"allow": false, "reason": "no route for POST /deploy/payments"}
}
