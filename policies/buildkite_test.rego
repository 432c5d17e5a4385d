package gateward.buildkite_test

import rego.v1

import data.gateward.buildkite as bk

# The deploy step of a webhook build of acme-inc/payments-deploy on main, with the optional
# organization_id and pipeline_id claims requested.
deploy_main := {
	"iss": "https://agent.buildkite.com",
	"sub": "organization:acme-inc:pipeline:payments-deploy:ref:refs/heads/main:commit:9f3182061f1e2cca4702c368cbc039b7dc9d4485:step:deploy",
	"aud": "https://my-proxy.example.com",
	"iat": 1790000000,
	"nbf": 1790000000,
	"exp": 1790000300,
	"jti": "0194b014-8517-7cef-b232-76a827315f08",
	"organization_slug": "acme-inc",
	"pipeline_slug": "payments-deploy",
	"build_number": 1542,
	"build_branch": "main",
	"build_tag": null,
	"build_commit": "9f3182061f1e2cca4702c368cbc039b7dc9d4485",
	"step_key": "deploy",
	"job_id": "0184990a-477b-4fa8-9968-496074483cee",
	"agent_id": "0184990a-4782-42b5-afc1-16715b10b8ff",
	"build_source": "webhook",
	"runner_environment": "self-hosted",
	"organization_id": "f892efa9-103e-4d28-97a1-3b8616a0994d",
	"pipeline_id": "0184990a-4782-42b5-afc1-16715b10b1f0",
}

tok(claims) := {
	"token": {"issuer": "buildkite", "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": "POST", "path": "/deploy/payments", "query": {}, "host": "api.internal", "headers": {}},
	"now": 1790000100,
}

rule := {
	"organization_id": "f892efa9-103e-4d28-97a1-3b8616a0994d",
	"organization_slug": "acme-inc",
	"pipeline_ids": ["0184990a-4782-42b5-afc1-16715b10b1f0"],
	"branches": ["main"],
}

slug_rule := {
	"organization_slug": "acme-inc",
	"pipeline_slugs": ["payments-deploy"],
	"branches": ["main"],
}

test_main_deploy_allowed if {
	bk.allowed(rule) with input as tok(deploy_main)
	bk.allowed(slug_rule) with input as tok(deploy_main)
	bk.branch("main") with input as tok(deploy_main)
}

test_other_organization_denied if {
	# Same shared issuer, another organization's pipeline of the same name.
	other := object.union(deploy_main, {
		"organization_slug": "evil-inc",
		"organization_id": "00000000-103e-4d28-97a1-3b8616a0994d",
		"sub": "organization:evil-inc:pipeline:payments-deploy:ref:refs/heads/main:commit:9f3182061f1e2cca4702c368cbc039b7dc9d4485:step:deploy",
	})
	not bk.allowed(rule) with input as tok(other)
	not bk.allowed(slug_rule) with input as tok(other)
	bk.denial(rule) == "organization evil-inc (id 00000000-103e-4d28-97a1-3b8616a0994d) is not the pinned organization" with input as tok(other)
}

test_renamed_slug_with_other_id_denied if {
	# The slug was freed and re-registered by someone else: the id differs.
	squat := object.union(deploy_main, {"organization_id": "11111111-103e-4d28-97a1-3b8616a0994d"})
	not bk.allowed(rule) with input as tok(squat)
}

test_missing_organization_id_claim_denied if {
	plain := object.remove(deploy_main, ["organization_id", "pipeline_id"])
	not bk.allowed(rule) with input as tok(plain)
	contains(bk.denial(rule), "no organization_id claim") with input as tok(plain)
	bk.allowed(slug_rule) with input as tok(plain)
}

test_missing_pipeline_id_claim_denied if {
	plain := object.remove(deploy_main, ["pipeline_id"])
	not bk.allowed(rule) with input as tok(plain)
	contains(bk.denial(rule), "no pipeline_id claim") with input as tok(plain)
}

test_other_pipeline_denied if {
	other := object.union(deploy_main, {"pipeline_slug": "sandbox", "pipeline_id": "0184990a-0000-42b5-afc1-16715b10b1f0"})
	not bk.allowed(rule) with input as tok(other)
	not bk.allowed(slug_rule) with input as tok(other)
	bk.denial(slug_rule) == "pipeline sandbox (id 0184990a-0000-42b5-afc1-16715b10b1f0) is not allowed" with input as tok(other)
}

test_other_branch_denied if {
	f := object.union(deploy_main, {"build_branch": "feature/x"})
	not bk.allowed(rule) with input as tok(f)
	bk.denial(rule) == "branch feature/x (tag null) is not an allowed branch or tag" with input as tok(f)
}

test_tag_build_is_not_a_branch_build if {
	# A tag named main: build_branch may say main too, but it is a tag build.
	t := object.union(deploy_main, {"build_tag": "main"})
	not bk.branch("main") with input as tok(t)
	bk.tag("main") with input as tok(t)
	not bk.allowed(rule) with input as tok(t)
}

test_release_tags if {
	r := object.union(object.remove(rule, ["branches"]), {"tags": ["v*"]})
	t := object.union(deploy_main, {"build_branch": "v3.0.0", "build_tag": "v3.0.0"})
	bk.allowed(r) with input as tok(t)
	not bk.allowed(r) with input as tok(deploy_main)
}

test_build_sources if {
	r := object.union(rule, {"build_sources": ["webhook", "schedule"]})
	bk.allowed(r) with input as tok(deploy_main)
	manual := object.union(deploy_main, {"build_source": "ui"})
	not bk.allowed(r) with input as tok(manual)
	bk.denial(r) == "build_source ui is not allowed" with input as tok(manual)
}

test_step_key_and_runner if {
	r := object.union(rule, {"step_keys": ["deploy"], "runner_environments": ["self-hosted"]})
	bk.allowed(r) with input as tok(deploy_main)
	nokey := object.union(deploy_main, {"step_key": null})
	not bk.allowed(r) with input as tok(nokey)
	hosted := object.union(deploy_main, {"runner_environment": "buildkite-hosted"})
	not bk.allowed(r) with input as tok(hosted)
	bk.denial(r) == "runner_environment buildkite-hosted is not allowed" with input as tok(hosted)
}

test_cluster_claim_absent_denied if {
	r := object.union(rule, {"cluster_ids": ["c1"]})
	not bk.allowed(r) with input as tok(deploy_main)
	bk.allowed(r) with input as tok(object.union(deploy_main, {"cluster_id": "c1"}))
}

test_misconfigured_rules_deny if {
	no_org := {"pipeline_slugs": ["payments-deploy"], "branches": ["main"]}
	not bk.allowed(no_org) with input as tok(deploy_main)
	bk.denial(no_org) == "rule misconfigured: organization_id or organization_slug is required" with input as tok(deploy_main)

	no_pipeline := {"organization_slug": "acme-inc", "branches": ["main"]}
	not bk.allowed(no_pipeline) with input as tok(deploy_main)

	typo := object.union(slug_rule, {"branch": "main"})
	not bk.allowed(typo) with input as tok(deploy_main)
	bk.denial(typo) == "rule misconfigured: unknown field \"branch\"" with input as tok(deploy_main)
}
