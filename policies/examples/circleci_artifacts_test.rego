package gateward.examples.circleci_artifacts_test

import rego.v1

import data.gateward.examples.circleci_artifacts as example
import data.gateward.examples.fixtures_test as fx

routes := fx.circleci_routes

build := fx.circleci_build

req(claims, method, path) := {
	"token": {"issuer": "circleci", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

decide(claims, method, path) := d if {
	d := example.decision with input as req(claims, method, path) with data.routes as routes
}

test_main_upload_allowed if {
	d := decide(build, "PUT", "/artifacts/api/app.tar.gz")
	d.allow == true
	d.reason == "route api-artifacts: github.com/acme/api at refs/heads/main"
	d.headers["x-ci-project-id"] == "3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c"
}

test_release_tag_allowed if {
	decide(object.union(build, {"oidc.circleci.com/vcs-ref": "refs/tags/v1.2.0"}), "PUT", "/artifacts/api/app.tar.gz").allow == true
}

test_ssh_rerun_denied if {
	d := decide(object.union(build, {"oidc.circleci.com/ssh-rerun": true}), "PUT", "/artifacts/api/app.tar.gz")
	d == {"allow": false, "reason": "route api-artifacts: the job was rerun with SSH: a person had a shell in it"}
}

test_fork_build_denied if {
	fork := object.union(build, {
		"oidc.circleci.com/vcs-origin": "github.com/mallory/api",
		"oidc.circleci.com/vcs-ref": "refs/heads/pull/42",
	})
	d := decide(fork, "PUT", "/artifacts/api/app.tar.gz")
	d == {"allow": false, "reason": "route api-artifacts: repository github.com/mallory/api is not allowed (a fork?)"}
}

test_job_without_context_denied if {
	d := decide(object.union(build, {"oidc.circleci.com/context-ids": []}), "PUT", "/artifacts/api/app.tar.gz")
	d == {"allow": false, "reason": "route api-artifacts: the job has none of the required contexts"}
}

test_other_org_denied if {
	other := object.union(build, {
		"iss": "https://oidc.circleci.com/org/0d9e8f7a-1111-4c85-8a81-000000000000",
		"oidc.circleci.com/org-id": "0d9e8f7a-1111-4c85-8a81-000000000000",
	})
	decide(other, "PUT", "/artifacts/api/app.tar.gz").allow == false
}

test_wrong_method_denied if {
	decide(build, "DELETE", "/artifacts/api/app.tar.gz") == {"allow": false, "reason": "no route for DELETE /artifacts/api/app.tar.gz"}
}
