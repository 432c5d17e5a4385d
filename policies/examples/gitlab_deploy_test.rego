package gateward.examples.gitlab_deploy_test

import rego.v1

import data.gateward.examples.gitlab_deploy as example
import data.gateward.examples.fixtures_test as fx

routes := fx.gitlab_routes

deploy := fx.gitlab_deploy

# An MR pipeline of a feature branch of the same project (no environment).
mr := object.union(object.remove(deploy, ["environment", "environment_protected"]), {
	"pipeline_source": "merge_request_event",
	"ref": "feature/login",
	"ref_path": "refs/heads/feature/login",
	"ref_protected": "false",
})

req(claims, method, path) := {
	"token": {"issuer": "gitlab", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

decide(claims, method, path) := d if {
	d := example.decision with input as req(claims, method, path) with data.routes as routes
}

test_production_deploy_allowed if {
	d := decide(deploy, "POST", "/deploy/api")
	d.allow == true
	d.reason == "route api-deploy: acme/platform/api at branch main"
	d.headers == {
		"x-gateward-route": "api-deploy",
		"x-ci-project": "acme/platform/api",
		"x-ci-project-id": "44123456",
		"x-ci-ref": "branch:main",
	}
}

test_unprotected_ref_denied if {
	d := decide(object.union(deploy, {"ref_protected": "false"}), "POST", "/deploy/api")
	d == {"allow": false, "reason": "route api-deploy: ref main is not protected"}
}

test_tag_main_denied if {
	t := object.union(deploy, {"ref_type": "tag", "ref_path": "refs/tags/main"})
	d := decide(t, "POST", "/deploy/api")
	d == {"allow": false, "reason": "route api-deploy: ref main (tag) is not an allowed branch or tag"}
}

test_stale_token_denied if {
	# GitLab tokens live as long as the job timeout; the route caps their age at an hour.
	d := example.decision with input as object.union(req(deploy, "POST", "/deploy/api"), {"now": 1790007200})
		with data.routes as routes
	d == {"allow": false, "reason": "route api-deploy: token issued 7200 s ago, more than 3600 s"}
}

test_merge_request_preview_allowed if {
	decide(mr, "POST", "/preview/api").allow == true
	decide(mr, "DELETE", "/preview/api/42").allow == true
	# ...but never a deploy.
	decide(mr, "POST", "/deploy/api").allow == false
}

test_fork_merge_request_denied if {
	fork := object.union(mr, {
		"namespace_id": "7700001",
		"namespace_path": "mallory",
		"project_id": "55500001",
		"project_path": "mallory/api",
	})
	d := decide(fork, "POST", "/preview/api")
	d == {"allow": false, "reason": "route api-preview: merge request pipeline from fork mallory/api (project 55500001) running in project acme/platform/api (44123456)"}
}

test_path_prefix_trick_denied if {
	d := decide(deploy, "POST", "/deploy/api-internal")
	d == {"allow": false, "reason": "no route for POST /deploy/api-internal"}
	decide(deploy, "POST", "/deploy/api%2F..%2Fadmin").allow == false
}
