package gateward.github_actions_test

import rego.v1

import data.gateward.github_actions as gh

# A push to main of acme-corp/payments-api whose deploy job is a reusable workflow from
# acme-corp/platform-workflows (the shape of a real token; every claim is a string).
push_main := {
	"jti": "2c1b7f4e-6a3d-4a8e-9b35-0f4d7a1e9c22",
	"iss": "https://token.actions.githubusercontent.com",
	"aud": "https://github.com/acme-corp",
	"sub": "repo:acme-corp/payments-api:ref:refs/heads/main",
	"ref": "refs/heads/main",
	"ref_type": "branch",
	"ref_protected": "true",
	"sha": "5f0c2a9be1d34c7a8e6f9b0d1c2e3f4a5b6c7d8e",
	"repository": "acme-corp/payments-api",
	"repository_id": "812345678",
	"repository_owner": "acme-corp",
	"repository_owner_id": "91234567",
	"repository_visibility": "private",
	"actor": "jdoe",
	"actor_id": "4412345",
	"event_name": "push",
	"base_ref": "",
	"head_ref": "",
	"workflow": "Deploy",
	"workflow_ref": "acme-corp/payments-api/.github/workflows/deploy.yml@refs/heads/main",
	"workflow_sha": "5f0c2a9be1d34c7a8e6f9b0d1c2e3f4a5b6c7d8e",
	"job_workflow_ref": "acme-corp/platform-workflows/.github/workflows/aws-deploy.yml@refs/tags/v3.2.0",
	"job_workflow_sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
	"run_id": "10988497055",
	"run_number": "412",
	"run_attempt": "1",
	"check_run_id": "31234567890",
	"runner_environment": "github-hosted",
	"nbf": 1790000000,
	"iat": 1790000600,
	"exp": 1790000900,
}

# The same job in environment `production`.
env_production := object.union(push_main, {
	"sub": "repo:acme-corp/payments-api:environment:production",
	"environment": "production",
})

tok(claims) := {
	"token": {"issuer": "github", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "POST", "path": "/deploy/payments", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000700,
}

main_rule := {
	"owner_id": "91234567",
	"repository_ids": ["812345678"],
	"branches": ["main"],
	"job_workflows": ["acme-corp/platform-workflows/.github/workflows/aws-deploy.yml@refs/tags/v3.2.0"],
}

env_rule := {
	"owner_id": "91234567",
	"repository_ids": ["812345678"],
	"environments": ["production"],
}

test_push_to_main_allowed if {
	gh.allowed(main_rule) with input as tok(push_main)
}

test_name_squatted_owner_denied if {
	# Same login and repository name, re-registered: a different owner id.
	squat := object.union(push_main, {"repository_owner_id": "13371337", "repository_id": "999000111"})
	not gh.allowed(main_rule) with input as tok(squat)
	gh.denial(main_rule) == "repository owner acme-corp (id 13371337) is not the pinned owner id 91234567" with input as tok(squat)
}

test_owner_login_checked_in_addition_to_id if {
	rule := object.union(main_rule, {"owner": "acme-corp"})
	gh.allowed(rule) with input as tok(push_main)
	renamed := object.union(push_main, {"repository_owner": "acme-renamed"})
	not gh.allowed(rule) with input as tok(renamed)
	gh.denial(rule) == "repository owner acme-renamed is not acme-corp" with input as tok(renamed)
}

test_other_repository_of_the_owner_denied if {
	other := object.union(push_main, {"repository": "acme-corp/sandbox", "repository_id": "812349999"})
	not gh.allowed(main_rule) with input as tok(other)
	gh.denial(main_rule) == "repository acme-corp/sandbox (id 812349999) is not allowed" with input as tok(other)
}

test_all_repositories_of_the_owner if {
	rule := {"owner_id": "91234567", "all_repositories": true, "branches": ["main"]}
	other := object.union(push_main, {"repository": "acme-corp/sandbox", "repository_id": "812349999"})
	gh.allowed(rule) with input as tok(other)
}

test_pull_request_target_denied_even_with_ref_main if {
	prt := object.union(push_main, {"event_name": "pull_request_target", "base_ref": "main", "head_ref": "patch-1"})
	not gh.allowed(main_rule) with input as tok(prt)
	contains(gh.denial(main_rule), "event pull_request_target is never allowed") with input as tok(prt)
}

test_pull_request_target_denied_even_if_listed if {
	rule := object.union(main_rule, {"events": ["push", "pull_request_target"]})
	prt := object.union(push_main, {"event_name": "pull_request_target"})
	not gh.allowed(rule) with input as tok(prt)
	gh.allowed(rule) with input as tok(push_main)
}

test_workflow_run_only_when_listed if {
	wr := object.union(push_main, {"event_name": "workflow_run"})
	not gh.allowed(main_rule) with input as tok(wr)
	gh.denial(main_rule) == "event workflow_run is not allowed (allowed: push, workflow_dispatch, schedule, release)" with input as tok(wr)
	rule := object.union(main_rule, {"events": ["push", "workflow_run"]})
	gh.allowed(rule) with input as tok(wr)
}

test_pull_request_denied_by_default if {
	pr := object.union(push_main, {
		"event_name": "pull_request",
		"ref": "refs/pull/123/merge",
		"base_ref": "main",
		"head_ref": "feature/x",
		"sub": "repo:acme-corp/payments-api:pull_request",
	})
	not gh.allowed(main_rule) with input as tok(pr)
	contains(gh.denial(main_rule), "event pull_request is not allowed") with input as tok(pr)
}

test_tag_named_main_is_not_branch_main if {
	t := object.union(push_main, {"ref": "refs/tags/main", "ref_type": "tag", "sub": "repo:acme-corp/payments-api:ref:refs/tags/main"})
	not gh.allowed(main_rule) with input as tok(t)
	gh.denial(main_rule) == "ref refs/tags/main (tag) is not an allowed branch or tag" with input as tok(t)
}

test_ref_type_must_agree_with_ref if {
	# A branch ref claimed as a tag (or vice versa) matches neither helper.
	odd := object.union(push_main, {"ref_type": "tag"})
	not gh.branch("main") with input as tok(odd)
	not gh.tag("main") with input as tok(odd)
	gh.branch("main") with input as tok(push_main)
}

test_feature_branch_denied if {
	f := object.union(push_main, {"ref": "refs/heads/feature/x", "ref_protected": "false"})
	not gh.allowed(main_rule) with input as tok(f)
}

test_tag_patterns if {
	rule := {"owner_id": "91234567", "repository_ids": ["812345678"], "tags": ["v*"]}
	release := object.union(push_main, {"ref": "refs/tags/v1.4.0", "ref_type": "tag", "event_name": "release"})
	gh.allowed(rule) with input as tok(release)
	# `*` does not cross `/`.
	nested := object.union(release, {"ref": "refs/tags/v1/evil"})
	not gh.allowed(rule) with input as tok(nested)
	# A branch called v2 is not a tag.
	br := object.union(push_main, {"ref": "refs/heads/v2"})
	not gh.allowed(rule) with input as tok(br)
}

test_environment_allowed if {
	gh.allowed(env_rule) with input as tok(env_production)
	gh.environment("production") with input as tok(env_production)
}

test_other_environment_denied if {
	staging := object.union(env_production, {"environment": "staging", "sub": "repo:acme-corp/payments-api:environment:staging"})
	not gh.allowed(env_rule) with input as tok(staging)
	gh.denial(env_rule) == "environment staging is not allowed" with input as tok(staging)
}

test_missing_environment_denied if {
	not gh.allowed(env_rule) with input as tok(push_main)
	gh.denial(env_rule) == "environment (missing) is not allowed" with input as tok(push_main)
}

test_other_reusable_workflow_denied if {
	# A caller in the right repository running its own deploy job instead of the central one.
	own := object.union(push_main, {
		"job_workflow_ref": "acme-corp/payments-api/.github/workflows/deploy.yml@refs/heads/main",
		"job_workflow_sha": "5f0c2a9be1d34c7a8e6f9b0d1c2e3f4a5b6c7d8e",
	})
	not gh.allowed(main_rule) with input as tok(own)
	gh.denial(main_rule) == "job workflow acme-corp/payments-api/.github/workflows/deploy.yml@refs/heads/main is not allowed" with input as tok(own)
}

test_job_workflow_sha_pin if {
	rule := object.union(main_rule, {"job_workflow_shas": ["a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"]})
	gh.allowed(rule) with input as tok(push_main)
	moved := object.union(push_main, {"job_workflow_sha": "0000000000000000000000000000000000000000"})
	not gh.allowed(rule) with input as tok(moved)
}

test_protected_ref if {
	rule := object.union(main_rule, {"protected_ref": true})
	gh.allowed(rule) with input as tok(push_main)
	unprotected := object.union(push_main, {"ref_protected": "false"})
	not gh.allowed(rule) with input as tok(unprotected)
	gh.denial(rule) == "ref refs/heads/main is not protected" with input as tok(unprotected)
}

test_runner_environment if {
	rule := object.union(main_rule, {"runner_environments": ["github-hosted"]})
	gh.allowed(rule) with input as tok(push_main)
	selfhosted := object.union(push_main, {"runner_environment": "self-hosted"})
	not gh.allowed(rule) with input as tok(selfhosted)
}

test_parse_classic_subject if {
	s := gh.parse_subject("repo:acme-corp/payments-api:environment:Production%3AV1")
	s.owner == "acme-corp"
	s.repository == "acme-corp/payments-api"
	s.context == "environment:Production%3AV1"
	s.immutable == false
}

test_parse_immutable_subject if {
	s := gh.parse_subject("repo:acme-corp@91234567/payments-api@812345678:ref:refs/heads/main")
	s.owner == "acme-corp"
	s.owner_id == "91234567"
	s.repository_id == "812345678"
	s.repository == "acme-corp/payments-api"
	s.classic == "repo:acme-corp/payments-api:ref:refs/heads/main"
	s.immutable == true
}

test_parse_subject_rejects_malformed if {
	not gh.parse_subject("repo:acme-corp@91234567/payments-api:ref:refs/heads/main") # ids on one side only
	not gh.parse_subject("repo:acme-corp@x1/payments-api@2:ref:refs/heads/main") # id not numeric
	not gh.parse_subject("repo:acme-corp/payments-api") # no context
	not gh.parse_subject("repository_owner:acme-corp:repository_visibility:private") # custom template
	not gh.parse_subject(42)
}

test_classic_subject_rule_accepts_immutable_subject if {
	rule := object.union(main_rule, {"subjects": ["repo:acme-corp/payments-api:ref:refs/heads/main"]})
	gh.allowed(rule) with input as tok(push_main)
	immutable := object.union(push_main, {"sub": "repo:acme-corp@91234567/payments-api@812345678:ref:refs/heads/main"})
	gh.allowed(rule) with input as tok(immutable)
}

test_immutable_subject_rule_entry if {
	rule := object.union(main_rule, {"subjects": ["repo:acme-corp@91234567/payments-api@812345678:ref:refs/heads/main"]})
	immutable := object.union(push_main, {"sub": "repo:acme-corp@91234567/payments-api@812345678:ref:refs/heads/main"})
	gh.allowed(rule) with input as tok(immutable)
}

test_immutable_subject_with_other_ids_denied if {
	# The ids in `sub` must be the id claims; a legacy-name collision cannot satisfy both.
	rule := object.union(main_rule, {"subjects": ["repo:acme-corp/payments-api:ref:refs/heads/main"]})
	forged := object.union(push_main, {"sub": "repo:acme-corp@555/payments-api@812345678:ref:refs/heads/main"})
	not gh.subject_consistent with input as tok(forged)
	not gh.allowed(rule) with input as tok(forged)
}

test_subject_context_must_match if {
	rule := object.union(main_rule, {"subjects": ["repo:acme-corp/payments-api:environment:production"]})
	not gh.allowed(rule) with input as tok(push_main)
	contains(gh.denial(rule), "subject repo:acme-corp/payments-api:ref:refs/heads/main is not allowed") with input as tok(push_main)
}

test_enterprise_pin if {
	rule := object.union(main_rule, {"enterprise_id": "123"})
	ent := object.union(push_main, {"iss": "https://token.actions.githubusercontent.com/acme-ent", "enterprise": "acme-ent", "enterprise_id": "123"})
	gh.allowed(rule) with input as tok(ent)
	not gh.allowed(rule) with input as tok(push_main)
}

test_misconfigured_rules_deny if {
	typo := {"owner_id": "91234567", "repository_ids": ["812345678"], "branch": ["main"]}
	not gh.allowed(typo) with input as tok(push_main)
	gh.denial(typo) == "rule misconfigured: at least one of branches, tags or environments is required; unknown field \"branch\"" with input as tok(push_main)

	numeric := {"owner_id": 91234567, "repository_ids": [812345678], "branches": ["main"]}
	not gh.allowed(numeric) with input as tok(push_main)
	contains(gh.denial(numeric), "owner_id must be the owner's numeric id as a string") with input as tok(push_main)

	no_repos := {"owner_id": "91234567", "branches": ["main"]}
	not gh.allowed(no_repos) with input as tok(push_main)

	not gh.allowed("not an object") with input as tok(push_main)
}

test_missing_claims_deny if {
	not gh.allowed(main_rule) with input as tok(object.remove(push_main, ["repository_owner_id"]))
	not gh.allowed(main_rule) with input as tok(object.remove(push_main, ["event_name"]))
	not gh.allowed(main_rule) with input as tok(object.remove(push_main, ["ref_type"]))
	not gh.allowed(main_rule) with input as tok({})
}
