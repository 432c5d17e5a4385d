package gateward.gitlab_test

import rego.v1

import data.gateward.gitlab as gl

# A push pipeline on protected `main` of acme/platform/api deploying to production (gitlab.com).
push_main := {
	"namespace_id": "5512345",
	"namespace_path": "acme/platform",
	"project_id": "44123456",
	"project_path": "acme/platform/api",
	"job_namespace_id": "5512345",
	"job_namespace_path": "acme/platform",
	"job_project_id": "44123456",
	"job_project_path": "acme/platform/api",
	"user_id": "1234567",
	"user_login": "jdoe",
	"user_email": "jdoe@acme.example",
	"user_access_level": "maintainer",
	"pipeline_id": "1298765432",
	"pipeline_source": "push",
	"job_id": "8012345678",
	"ref": "main",
	"ref_type": "branch",
	"ref_path": "refs/heads/main",
	"ref_protected": "true",
	"environment": "production",
	"environment_protected": "true",
	"deployment_tier": "production",
	"environment_action": "start",
	"runner_id": 12270857,
	"runner_environment": "gitlab-hosted",
	"sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
	"project_visibility": "private",
	"ci_config_ref_uri": "gitlab.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main",
	"ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
	"job_source": "push",
	"jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
	"iss": "https://gitlab.com",
	"aud": "https://my-proxy.example.com",
	"sub": "project_path:acme/platform/api:ref_type:branch:ref:main",
	"iat": 1790000000,
	"nbf": 1789999995,
	"exp": 1790003600,
}

# A merge request pipeline from a fork (jdoe-fork/api, in another namespace) running in the
# parent project: project_* is the fork, job_project_* the parent.
fork_mr := object.union(push_main, {
	"namespace_id": "7700001",
	"namespace_path": "mallory",
	"project_id": "55500001",
	"project_path": "mallory/api",
	"pipeline_source": "merge_request_event",
	"ref": "patch-1",
	"ref_path": "refs/heads/patch-1",
	"ref_protected": "false",
	"sub": "project_path:mallory/api:ref_type:branch:ref:patch-1",
})

tok(claims) := {
	"token": {"issuer": "gitlab", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "POST", "path": "/deploy/api", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

rule := {
	"namespace_id": "5512345",
	"project_ids": ["44123456"],
	"branches": ["main"],
	"environments": ["production"],
}

test_protected_main_allowed if {
	gl.allowed(rule) with input as tok(push_main)
	gl.branch("main") with input as tok(push_main)
	gl.environment("production") with input as tok(push_main)
}

test_namespace_only_rule if {
	gl.allowed({"namespace_id": "5512345", "branches": ["main"]}) with input as tok(push_main)
}

test_project_only_rule if {
	gl.allowed({"project_ids": ["44123456"], "branches": ["main"]}) with input as tok(push_main)
}

test_recycled_namespace_path_denied if {
	# The group path was deleted and re-registered: same paths, new ids.
	recycled := object.union(push_main, {
		"namespace_id": "9900001",
		"job_namespace_id": "9900001",
		"project_id": "99000002",
		"job_project_id": "99000002",
	})
	not gl.allowed(rule) with input as tok(recycled)
	gl.denial(rule) == "namespace acme/platform (id 9900001) is not the pinned namespace id 5512345" with input as tok(recycled)
}

test_other_project_in_namespace_denied if {
	other := object.union(push_main, {
		"project_id": "44129999",
		"project_path": "acme/platform/sandbox",
		"job_project_id": "44129999",
		"job_project_path": "acme/platform/sandbox",
	})
	not gl.allowed(rule) with input as tok(other)
	gl.denial(rule) == "project acme/platform/sandbox (id 44129999) is not allowed" with input as tok(other)
}

test_fork_merge_request_denied if {
	gl.from_fork with input as tok(fork_mr)
	not gl.allowed(rule) with input as tok(fork_mr)
	gl.denial(rule) == "merge request pipeline from fork mallory/api (project 55500001) running in project acme/platform/api (44123456)" with input as tok(fork_mr)
}

test_fork_denied_even_if_everything_else_matches if {
	# A fork inside the pinned group, on a protected branch: still refused unless allow_forks.
	same_group_fork := object.union(push_main, {"project_id": "44120000", "project_path": "acme/platform/api-fork"})
	r := {"namespace_id": "5512345", "branches": ["main"]}
	not gl.allowed(r) with input as tok(same_group_fork)
	contains(gl.denial(r), "merge request pipeline from fork acme/platform/api-fork") with input as tok(same_group_fork)
	gl.allowed(object.union(r, {"allow_forks": true})) with input as tok(same_group_fork)
}

test_job_project_pinned_too if {
	# project_* is ours but the job ran somewhere else.
	elsewhere := object.union(push_main, {"job_project_id": "44123456", "job_namespace_id": "6600000"})
	not gl.allowed(rule) with input as tok(elsewhere)
}

test_pre_18_4_tokens_need_opt_in if {
	old := object.remove(push_main, ["job_namespace_id", "job_namespace_path", "job_project_id", "job_project_path"])
	not gl.allowed(rule) with input as tok(old)
	contains(gl.denial(rule), "no job_project_id/job_namespace_id claims") with input as tok(old)
	gl.allowed(object.union(rule, {"job_claims_optional": true})) with input as tok(old)
}

test_unprotected_ref_denied if {
	unprotected := object.union(push_main, {"ref_protected": "false"})
	not gl.allowed(rule) with input as tok(unprotected)
	gl.denial(rule) == "ref main is not protected" with input as tok(unprotected)
	gl.allowed(object.union(rule, {"require_protected_ref": false})) with input as tok(unprotected)
}

test_tag_named_main_is_not_branch_main if {
	t := object.union(push_main, {"ref_type": "tag", "ref_path": "refs/tags/main", "sub": "project_path:acme/platform/api:ref_type:tag:ref:main"})
	not gl.branch("main") with input as tok(t)
	gl.tag("main") with input as tok(t)
	not gl.allowed(rule) with input as tok(t)
	gl.denial(rule) == "ref main (tag) is not an allowed branch or tag" with input as tok(t)
}

test_ref_path_must_agree if {
	odd := object.union(push_main, {"ref_path": "refs/tags/main"})
	not gl.branch("main") with input as tok(odd)
	not gl.allowed(rule) with input as tok(odd)
}

test_release_tags if {
	r := {"project_ids": ["44123456"], "tags": ["v*"]}
	release := object.union(push_main, {"ref": "v2.1.0", "ref_type": "tag", "ref_path": "refs/tags/v2.1.0"})
	gl.allowed(r) with input as tok(release)
	br := object.union(push_main, {"ref": "v2.1.0", "ref_path": "refs/heads/v2.1.0"})
	not gl.allowed(r) with input as tok(br)
}

test_merge_request_event_not_default if {
	mr := object.union(push_main, {"pipeline_source": "merge_request_event"})
	not gl.allowed(rule) with input as tok(mr)
	gl.denial(rule) == "pipeline source merge_request_event is not allowed (allowed: push, web, schedule)" with input as tok(mr)
	gl.allowed(object.union(rule, {"pipeline_sources": ["push", "merge_request_event"]})) with input as tok(mr)
}

test_trigger_source_denied if {
	t := object.union(push_main, {"pipeline_source": "trigger"})
	not gl.allowed(rule) with input as tok(t)
}

test_other_environment_denied if {
	staging := object.union(push_main, {"environment": "staging", "deployment_tier": "staging"})
	not gl.allowed(rule) with input as tok(staging)
	gl.denial(rule) == "environment staging is not allowed" with input as tok(staging)
}

test_unprotected_environment_denied if {
	u := object.union(push_main, {"environment_protected": "false"})
	not gl.allowed(rule) with input as tok(u)
	gl.denial(rule) == "environment production is not protected" with input as tok(u)
}

test_missing_environment_denied if {
	noenv := object.remove(push_main, ["environment", "environment_protected", "deployment_tier", "environment_action"])
	not gl.allowed(rule) with input as tok(noenv)
	gl.denial(rule) == "environment (missing) is not allowed" with input as tok(noenv)
}

test_ci_config_ref_uri if {
	r := object.union(rule, {"ci_config_ref_uris": ["gitlab.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main"]})
	gl.allowed(r) with input as tok(push_main)
	# null when the pipeline configuration lives in another project
	external := object.union(push_main, {"ci_config_ref_uri": null, "ci_config_sha": null})
	not gl.allowed(r) with input as tok(external)
	gl.denial(r) == "pipeline definition null is not allowed" with input as tok(external)
}

test_max_age if {
	r := object.union(rule, {"max_age_seconds": 900})
	gl.allowed(r) with input as tok(push_main)
	late := object.union(tok(push_main), {"now": 1790003000})
	not gl.allowed(r) with input as late
	gl.denial(r) == "token issued 3000 s ago, more than 900 s" with input as late
	no_iat := tok(object.union(push_main, {"iat": "1790000000"}))
	not gl.allowed(r) with input as no_iat
	gl.denial(r) == "the token's age is unknown: it has no numeric iat claim" with input as no_iat
}

test_misconfigured_rules_deny if {
	no_tenant := {"branches": ["main"]}
	not gl.allowed(no_tenant) with input as tok(push_main)
	gl.denial(no_tenant) == "rule misconfigured: namespace_id or project_ids is required" with input as tok(push_main)

	typo := {"namespace_id": "5512345", "branches": ["main"], "pipeline_source": ["push"]}
	not gl.allowed(typo) with input as tok(push_main)
	gl.denial(typo) == "rule misconfigured: unknown field \"pipeline_source\"" with input as tok(push_main)

	numeric := {"namespace_id": 5512345, "branches": ["main"]}
	not gl.allowed(numeric) with input as tok(push_main)

	no_where := {"namespace_id": "5512345"}
	not gl.allowed(no_where) with input as tok(push_main)
}

test_missing_claims_deny if {
	not gl.allowed(rule) with input as tok(object.remove(push_main, ["namespace_id"]))
	not gl.allowed(rule) with input as tok(object.remove(push_main, ["ref_protected"]))
	not gl.allowed(rule) with input as tok(object.remove(push_main, ["pipeline_source"]))
	not gl.allowed(rule) with input as tok({})
}
