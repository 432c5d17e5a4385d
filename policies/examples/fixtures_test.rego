# Fixtures shared by the example tests: the routes of each *.data.json, and realistic claims.
# No test_* rules here: a test that references this package does not run other tests.
package gateward.examples.fixtures_test

import rego.v1

# The routes of github_deploy.data.json.
github_routes := [
	{
		"name": "payments-deploy",
		"path_prefix": "/deploy/payments",
		"methods": ["POST"],
		"issuer": "github",
		"github_actions": {
			"owner_id": "91234567",
			"repository_ids": ["812345678"],
			"branches": ["main"],
			"environments": ["production"],
			"events": ["push", "workflow_dispatch"],
			"job_workflows": ["acme-corp/platform-workflows/.github/workflows/aws-deploy.yml@refs/tags/v3.2.0"],
			"protected_ref": true,
		},
	},
	{
		"name": "releases",
		"path_prefix": "/releases",
		"methods": ["PUT"],
		"issuer": "github",
		"github_actions": {
			"owner_id": "91234567",
			"all_repositories": true,
			"tags": ["v*"],
			"events": ["push", "release"],
		},
	},
	{
		"name": "status",
		"path_prefix": "/status",
		"methods": ["GET"],
		"issuer": "github",
		"github_actions": {
			"owner_id": "91234567",
			"all_repositories": true,
			"branches": ["**"],
		},
	},
]


# The production deploy job of acme-corp/payments-api (central reusable workflow, main).
github_deploy := {
	"iss": "https://token.actions.githubusercontent.com",
	"aud": "https://github.com/acme-corp",
	"sub": "repo:acme-corp/payments-api:environment:production",
	"environment": "production",
	"ref": "refs/heads/main",
	"ref_type": "branch",
	"ref_protected": "true",
	"sha": "5f0c2a9be1d34c7a8e6f9b0d1c2e3f4a5b6c7d8e",
	"repository": "acme-corp/payments-api",
	"repository_id": "812345678",
	"repository_owner": "acme-corp",
	"repository_owner_id": "91234567",
	"repository_visibility": "private",
	"event_name": "push",
	"workflow_ref": "acme-corp/payments-api/.github/workflows/deploy.yml@refs/heads/main",
	"job_workflow_ref": "acme-corp/platform-workflows/.github/workflows/aws-deploy.yml@refs/tags/v3.2.0",
	"job_workflow_sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
	"runner_environment": "github-hosted",
	"nbf": 1790000000,
	"iat": 1790000600,
	"exp": 1790000900,
}


# The routes of gitlab_deploy.data.json.
gitlab_routes := [
	{
		"name": "api-deploy",
		"path_prefix": "/deploy/api",
		"methods": ["POST"],
		"issuer": "gitlab",
		"gitlab": {
			"namespace_id": "5512345",
			"project_ids": ["44123456"],
			"branches": ["main"],
			"environments": ["production"],
			"ci_config_ref_uris": ["gitlab.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main"],
			"max_age_seconds": 3600,
		},
	},
	{
		"name": "api-preview",
		"path_prefix": "/preview/api",
		"methods": ["POST", "DELETE"],
		"issuer": "gitlab",
		"gitlab": {
			"project_ids": ["44123456"],
			"branches": ["**"],
			"require_protected_ref": false,
			"pipeline_sources": ["push", "merge_request_event"],
		},
	},
]

# A push pipeline on protected main of acme/platform/api deploying to production.
gitlab_deploy := {
	"namespace_id": "5512345",
	"namespace_path": "acme/platform",
	"project_id": "44123456",
	"project_path": "acme/platform/api",
	"job_namespace_id": "5512345",
	"job_namespace_path": "acme/platform",
	"job_project_id": "44123456",
	"job_project_path": "acme/platform/api",
	"pipeline_source": "push",
	"ref": "main",
	"ref_type": "branch",
	"ref_path": "refs/heads/main",
	"ref_protected": "true",
	"environment": "production",
	"environment_protected": "true",
	"runner_id": 12270857,
	"runner_environment": "gitlab-hosted",
	"sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
	"ci_config_ref_uri": "gitlab.com/acme/platform/api//.gitlab-ci.yml@refs/heads/main",
	"ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
	"iss": "https://gitlab.com",
	"aud": "https://my-proxy.example.com",
	"sub": "project_path:acme/platform/api:ref_type:branch:ref:main",
	"iat": 1790000000,
	"nbf": 1789999995,
	"exp": 1790003600,
}


# The routes of circleci_artifacts.data.json.
circleci_routes := [
	{
		"name": "api-artifacts",
		"path_prefix": "/artifacts/api",
		"methods": ["PUT"],
		"issuer": "circleci",
		"circleci": {
			"org_id": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
			"project_ids": ["3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c"],
			"vcs_origins": ["github.com/acme/api"],
			"branches": ["main"],
			"tags": ["v*"],
			"context_ids": ["7b6a5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"],
		},
	},
]

# A V2 token of a build of acme/api on main with the release context.
circleci_build := {
	"iss": "https://oidc.circleci.com/org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"sub": "org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e/project/3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c/user/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/vcs-origin/github.com/acme/api/vcs-ref/refs/heads/main",
	"aud": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"oidc.circleci.com/org-id": "c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
	"oidc.circleci.com/project-id": "3a2f5b1c-7d4e-4f6a-9b8c-0d1e2f3a4b5c",
	"oidc.circleci.com/pipeline-definition-id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
	"oidc.circleci.com/context-ids": ["7b6a5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"],
	"oidc.circleci.com/vcs-origin": "github.com/acme/api",
	"oidc.circleci.com/vcs-ref": "refs/heads/main",
	"oidc.circleci.com/ssh-rerun": false,
	"iat": 1790000000,
	"exp": 1790003600,
}


# The routes of buildkite_deploy.data.json.
buildkite_routes := [
	{
		"name": "payments-deploy-buildkite",
		"path_prefix": "/deploy/payments",
		"methods": ["POST"],
		"issuer": "buildkite",
		"buildkite": {
			"organization_id": "f892efa9-103e-4d28-97a1-3b8616a0994d",
			"organization_slug": "acme-inc",
			"pipeline_ids": ["0184990a-4782-42b5-afc1-16715b10b1f0"],
			"branches": ["main"],
			"step_keys": ["deploy"],
			"build_sources": ["webhook", "ui"],
		},
	},
]


# The deploy step of a webhook build of acme-inc/payments-deploy on main.
buildkite_deploy := {
	"iss": "https://agent.buildkite.com",
	"sub": "organization:acme-inc:pipeline:payments-deploy:ref:refs/heads/main:commit:9f3182061f1e2cca4702c368cbc039b7dc9d4485:step:deploy",
	"aud": "https://my-proxy.example.com",
	"iat": 1790000000,
	"nbf": 1790000000,
	"exp": 1790000300,
	"organization_slug": "acme-inc",
	"pipeline_slug": "payments-deploy",
	"build_number": 1542,
	"build_branch": "main",
	"build_tag": null,
	"build_commit": "9f3182061f1e2cca4702c368cbc039b7dc9d4485",
	"step_key": "deploy",
	"build_source": "webhook",
	"runner_environment": "self-hosted",
	"organization_id": "f892efa9-103e-4d28-97a1-3b8616a0994d",
	"pipeline_id": "0184990a-4782-42b5-afc1-16715b10b1f0",
}


# The routes of spiffe_service.data.json.
spiffe_routes := [
	{
		"name": "payments-refunds",
		"path_prefix": "/payments/refunds",
		"methods": ["POST"],
		"issuer": "spire",
		"spiffe": {
			"trust_domain": "prod.acme.example",
			"path_prefixes": ["/ns/payments"],
			"audience": "spiffe://prod.acme.example/envoy/gateway",
		},
	},
	{
		"name": "ci-cache",
		"path_prefix": "/cache",
		"methods": ["GET", "PUT"],
		"issuer": "spire",
		"spiffe": {
			"trust_domain": "prod.acme.example",
			"path_prefixes": ["/ns/ci"],
			"audience": "spiffe://prod.acme.example/envoy/gateway",
		},
	},
]


# The routes of generic_api.data.json.
generic_routes := [
	{
		"name": "terraform-secrets",
		"path_prefix": "/secrets/payments",
		"methods": ["GET", "PUT"],
		"issuer": "tfc",
		"generic": {
			"issuers": ["https://app.terraform.io"],
			"subject_patterns": ["organization:acme:project:platform:workspace:payments-[a-z]+:run_phase:apply"],
			"audiences": ["https://my-proxy.example.com"],
			"claims": {
				"terraform_organization_id": "org-AbCdEf123456",
			},
			"max_age_seconds": 7200,
		},
	},
]

# An HCP Terraform apply of workspace payments-prod.
generic_apply := {
	"iss": "https://app.terraform.io",
	"sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:apply",
	"aud": "https://my-proxy.example.com",
	"terraform_organization_id": "org-AbCdEf123456",
	"terraform_workspace_id": "ws-XyZ987654321",
	"terraform_run_phase": "apply",
	"iat": 1790000000,
	"nbf": 1789999995,
	"exp": 1790007200,
}

# A SPIRE JWT-SVID of `sub` for the Envoy gateway.
spiffe_svid(sub) := {
	"sub": sub,
	"aud": ["spiffe://prod.acme.example/envoy/gateway"],
	"iss": "https://oidc.prod.acme.example",
	"iat": 1790000000,
	"exp": 1790000300,
}

# The routes of gateward.data.json: every example's, in this order.
all_routes := array.concat(
	array.concat(array.concat(github_routes, gitlab_routes), array.concat(circleci_routes, buildkite_routes)),
	array.concat(spiffe_routes, generic_routes),
)

# The policy input for a token from the configured issuer `issuer` with `claims`.
request(issuer, claims, method, path) := {
	"token": {"issuer": issuer, "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
	"request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
	"now": claims.iat + 100,
}
