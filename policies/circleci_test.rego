package gateward.circleci_test

import rego.v1

import data.gateward.circleci as cci

# A V2 token of a build of acme/api on main.
build_main := {
	"iss": "https://oidc.circleci.com/org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"sub": "org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e/project/3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c/user/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/vcs-origin/github.com/acme/api/vcs-ref/refs/heads/main",
	"aud": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"jti": "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c",
	"oidc.circleci.com/org-id": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"oidc.circleci.com/project-id": "3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c",
	"oidc.circleci.com/pipeline-id": "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f",
	"oidc.circleci.com/pipeline-definition-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
	"oidc.circleci.com/workflow-id": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
	"oidc.circleci.com/job-id": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
	"oidc.circleci.com/context-ids": ["7b6a5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"],
	"oidc.circleci.com/vcs-origin": "github.com/acme/api",
	"oidc.circleci.com/vcs-ref": "refs/heads/main",
	"oidc.circleci.com/ssh-rerun": false,
	"iat": 1790000000,
	"exp": 1790003600,
}

tok(claims) := {
	"token": {"issuer": "circleci", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "POST", "path": "/artifacts/api", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

rule := {
	"org_id": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"project_ids": ["3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c"],
	"vcs_origins": ["github.com/acme/api"],
	"branches": ["main"],
}

other_org := "0d9e8f7a-1111-4c85-8a81-000000000000"

test_main_build_allowed if {
	cci.allowed(rule) with input as tok(build_main)
	cci.branch("main") with input as tok(build_main)
	cci.no_ssh_rerun with input as tok(build_main)
}

test_ssh_rerun_denied if {
	rerun := object.union(build_main, {"oidc.circleci.com/ssh-rerun": true})
	cci.ssh_rerun with input as tok(rerun)
	not cci.allowed(rule) with input as tok(rerun)
	cci.denial(rule) == "the job was rerun with SSH: a person had a shell in it" with input as tok(rerun)
}

test_ssh_rerun_claim_missing_or_mistyped_denied if {
	missing := object.remove(build_main, ["oidc.circleci.com/ssh-rerun"])
	not cci.allowed(rule) with input as tok(missing)
	cci.denial(rule) == "ssh-rerun claim is (missing), not false" with input as tok(missing)
	as_string := object.union(build_main, {"oidc.circleci.com/ssh-rerun": "false"})
	not cci.allowed(rule) with input as tok(as_string)
}

test_other_org_denied if {
	other := object.union(build_main, {
		"iss": concat("", ["https://oidc.circleci.com/org/", other_org]),
		"oidc.circleci.com/org-id": other_org,
	})
	not cci.allowed(rule) with input as tok(other)
	contains(cci.denial(rule), "is not the pinned organization c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e") with input as tok(other)
}

test_issuer_and_org_claim_must_agree if {
	# The org-id claim is ours but the token came from another org's issuer (or the bare one).
	mixed := object.union(build_main, {"iss": concat("", ["https://oidc.circleci.com/org/", other_org])})
	not cci.allowed(rule) with input as tok(mixed)
	bare := object.union(build_main, {"iss": "https://oidc.circleci.com"})
	not cci.allowed(rule) with input as tok(bare)
	slash := object.union(build_main, {"iss": "https://oidc.circleci.com/org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e/"})
	not cci.allowed(rule) with input as tok(slash)
}

test_other_project_denied if {
	other := object.union(build_main, {"oidc.circleci.com/project-id": "99999999-7d4e-4f6a-9b8c-0d1e2f3a4b5c"})
	not cci.allowed(rule) with input as tok(other)
	cci.denial(rule) == "project 99999999-7d4e-4f6a-9b8c-0d1e2f3a4b5c is not allowed" with input as tok(other)
}

test_fork_build_denied if {
	# Fork builds (when fork secrets are on) keep the upstream org and project, but carry the
	# fork's origin and a pull ref.
	fork := object.union(build_main, {
		"oidc.circleci.com/vcs-origin": "github.com/mallory/api",
		"oidc.circleci.com/vcs-ref": "refs/heads/pull/42",
	})
	not cci.allowed(rule) with input as tok(fork)
	cci.denial(rule) == "repository github.com/mallory/api is not allowed (a fork?)" with input as tok(fork)
	# Even a rule that allows every branch refuses it through vcs_origins.
	not cci.allowed(object.union(rule, {"branches": ["**"]})) with input as tok(fork)
}

test_pull_ref_is_not_a_branch_pattern_match if {
	pull := object.union(build_main, {"oidc.circleci.com/vcs-ref": "refs/heads/pull/42"})
	not cci.allowed(object.union(rule, {"branches": ["*"]})) with input as tok(pull)
}

test_feature_branch_denied if {
	f := object.union(build_main, {"oidc.circleci.com/vcs-ref": "refs/heads/feature"})
	not cci.allowed(rule) with input as tok(f)
	cci.denial(rule) == "ref refs/heads/feature is not an allowed branch or tag" with input as tok(f)
}

test_tag_vs_branch if {
	r := object.union(object.remove(rule, ["branches"]), {"tags": ["v*"]})
	t := object.union(build_main, {"oidc.circleci.com/vcs-ref": "refs/tags/v1.0.0"})
	cci.allowed(r) with input as tok(t)
	cci.tag("v1.0.0") with input as tok(t)
	b := object.union(build_main, {"oidc.circleci.com/vcs-ref": "refs/heads/v1.0.0"})
	not cci.allowed(r) with input as tok(b)
}

test_custom_webhook_without_vcs_claims_denied if {
	hook := object.remove(build_main, ["oidc.circleci.com/vcs-origin", "oidc.circleci.com/vcs-ref"])
	not cci.allowed(rule) with input as tok(hook)
}

test_context_required if {
	r := object.union(rule, {"context_ids": ["7b6a5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"]})
	cci.allowed(r) with input as tok(build_main)
	none := object.union(build_main, {"oidc.circleci.com/context-ids": []})
	not cci.allowed(r) with input as tok(none)
	cci.denial(r) == "the job has none of the required contexts" with input as tok(none)
	absent := object.remove(build_main, ["oidc.circleci.com/context-ids"])
	not cci.allowed(r) with input as tok(absent)
}

test_pipeline_definition_pin if {
	r := object.union(rule, {"pipeline_definition_ids": ["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]})
	cci.allowed(r) with input as tok(build_main)
	other := object.union(build_main, {"oidc.circleci.com/pipeline-definition-id": "ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d"})
	not cci.allowed(r) with input as tok(other)
}

test_misconfigured_rules_deny if {
	org_only := {"org_id": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e"}
	not cci.allowed(org_only) with input as tok(build_main)
	cci.denial(org_only) == "rule misconfigured: at least one of branches or tags is required; project_ids is required; vcs_origins is required" with input as tok(build_main)

	upper := object.union(rule, {"org_id": "C9035EB6-6EB2-4C85-8A81-D9ED6A1D1D1E"})
	not cci.allowed(upper) with input as tok(build_main)

	typo := object.union(rule, {"allow_ssh_rerun": true})
	not cci.allowed(typo) with input as tok(build_main)
	cci.denial(typo) == "rule misconfigured: unknown field \"allow_ssh_rerun\"" with input as tok(build_main)
}
