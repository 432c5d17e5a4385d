package gateward.examples.github_deploy_test

import rego.v1

import data.gateward.examples.github_deploy as example
import data.gateward.examples.fixtures_test as fx

routes := fx.github_routes

deploy := fx.github_deploy

req(claims, method, path) := {
	"token": {"issuer": "github", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000700,
}

decide(claims, method, path) := d if {
	d := example.decision with input as req(claims, method, path) with data.routes as routes
}

test_production_deploy_allowed if {
	d := decide(deploy, "POST", "/deploy/payments")
	d.allow == true
	d.headers["x-gateward-route"] == "payments-deploy"
	d.headers["x-ci-repository-id"] == "812345678"
	decide(deploy, "POST", "/deploy/payments/v2").allow == true
}

test_immutable_subject_allowed if {
	d := decide(object.union(deploy, {"sub": "repo:acme-corp@91234567/payments-api@812345678:environment:production"}), "POST", "/deploy/payments")
	d.allow == true
}

test_path_prefix_trick_denied if {
	d := decide(deploy, "POST", "/deploy/payments-evil")
	d.allow == false
	d.reason == "no route for POST /deploy/payments-evil"
}

test_dot_dot_path_denied if {
	d := decide(deploy, "POST", "/status/../deploy/payments")
	d.allow == false
	d.reason == "request path \"/status/../deploy/payments\" is not in canonical form"
	decide(deploy, "POST", "/deploy/payments/%2e%2e/x").allow == false
	decide(deploy, "POST", "/deploy//payments").allow == false
}

# A token good only for the lax `status` route: Tomcat, Jetty and Spring strip `;params` and then
# resolve `..`, so these would reach /deploy/payments and /admin upstream.
test_dot_segment_with_parameters_denied if {
	status_only := object.union(deploy, {"environment": "staging", "sub": "repo:acme-corp/payments-api:environment:staging"})
	decide(status_only, "GET", "/status/x").allow == true
	d := decide(status_only, "GET", "/status/..;/deploy/payments")
	d.allow == false
	d.reason == "request path \"/status/..;/deploy/payments\" is not in canonical form"
	decide(status_only, "GET", "/status/%2e%2e;/admin").allow == false
	decide(status_only, "GET", "/status/.;/x").allow == false
	decide(deploy, "POST", "/deploy/payments;v=1").allow == false
}

test_lower_case_method_denied if {
	d := decide(deploy, "post", "/deploy/payments")
	d.allow == false
	d.reason == "request method \"post\" is not an upper-case token"
	decide(deploy, "get", "/status").allow == false
}

test_wrong_method_denied if {
	d := decide(deploy, "GET", "/deploy/payments")
	d.allow == false
	d.reason == "no route for GET /deploy/payments"
}

test_fork_pull_request_target_denied if {
	prt := object.union(deploy, {"event_name": "pull_request_target", "head_ref": "patch-1", "base_ref": "main"})
	d := decide(prt, "POST", "/deploy/payments")
	d.allow == false
	startswith(d.reason, "route payments-deploy: event pull_request_target is never allowed")
}

test_name_squatted_org_denied if {
	squat := object.union(deploy, {"repository_owner_id": "66600666", "repository_id": "66600667"})
	d := decide(squat, "POST", "/deploy/payments")
	d.allow == false
	d.reason == "route payments-deploy: repository owner acme-corp (id 66600666) is not the pinned owner id 91234567"
}

test_other_environment_denied if {
	staging := object.union(deploy, {"environment": "staging", "sub": "repo:acme-corp/payments-api:environment:staging"})
	d := decide(staging, "POST", "/deploy/payments")
	d.allow == false
	d.reason == "route payments-deploy: environment staging is not allowed"
}

test_release_tag_allowed_branch_denied if {
	tag := object.union(deploy, {"ref": "refs/tags/v2.0.0", "ref_type": "tag", "event_name": "release", "repository": "acme-corp/cli", "repository_id": "812340000"})
	decide(tag, "PUT", "/releases/cli").allow == true
	branch := object.union(tag, {"ref": "refs/heads/v2.0.0", "ref_type": "branch"})
	d := decide(branch, "PUT", "/releases/cli")
	d.allow == false
	d.reason == "route releases: ref refs/heads/v2.0.0 (branch) is not an allowed branch or tag"
}

test_status_any_branch_of_owner if {
	feature := object.union(deploy, {"ref": "refs/heads/feature/x", "ref_protected": "false", "repository_id": "1"})
	decide(feature, "GET", "/status/build").allow == true
	other_owner := object.union(feature, {"repository_owner_id": "2"})
	decide(other_owner, "GET", "/status/build").allow == false
}

test_other_issuer_denied if {
	d := example.decision with input as object.union(req(deploy, "POST", "/deploy/payments"), {"token": {"issuer": "gitlab", "claims": deploy}})
		with data.routes as routes
	d.allow == false
	d.reason == "route payments-deploy does not accept tokens from issuer \"gitlab\""
}

test_no_routes_denied if {
	empty := example.decision with input as req(deploy, "POST", "/deploy/payments") with data.routes as []
	empty == {"allow": false, "reason": "no route for POST /deploy/payments"}
	absent := example.decision with input as req(deploy, "POST", "/deploy/payments")
	absent.allow == false
}
