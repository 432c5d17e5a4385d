# GitHub Actions ID tokens (github.com, GHEC, GHE.com, GHES).
#
# A rule (the `github_actions` object of a route in `data.routes`):
#
#   owner_id              required  repository_owner_id, the owner's immutable numeric id (string)
#   repository_ids        required  repository_id values (strings), unless all_repositories is true
#   all_repositories      optional  true: any repository of the pinned owner
#   owner                 optional  repository_owner login, checked in addition to owner_id
#   enterprise_id         optional  enterprise_id (GHEC), checked in addition
#   branches, tags        optional  glob patterns on the branch / tag name (`*` stops at `/`)
#   environments          optional  allowed `environment` values
#                                   (at least one of branches, tags, environments is required)
#   events                optional  allowed event_name values; default push, workflow_dispatch,
#                                   schedule, release. pull_request_target is refused even if listed.
#   job_workflows         optional  exact job_workflow_ref values (the reusable workflow that ran)
#   job_workflow_shas     optional  job_workflow_sha values
#   workflows             optional  exact workflow_ref values (the top-level workflow file)
#   subjects              optional  allowed `sub` values, classic or immutable form (both accepted)
#   protected_ref         optional  true: ref_protected must be "true"
#   runner_environments   optional  e.g. ["github-hosted"]
#   visibilities          optional  repository_visibility values
#
# Names (repository, repository_owner) are recycled after renames and deletions; ids are not.
# Every claim GitHub issues is a string, including ids and "true"/"false".
package gateward.github_actions

import rego.v1

import data.gateward.common

claims := input.token.claims

default_events := ["push", "workflow_dispatch", "schedule", "release"]

# Events that run with the base repository's privileges on code a fork can influence.
privileged_events := {"pull_request_target"}

known_fields := {
	"owner_id", "repository_ids", "all_repositories", "owner", "enterprise_id",
	"branches", "tags", "environments", "events", "job_workflows", "job_workflow_shas",
	"workflows", "subjects", "protected_ref", "runner_environments", "visibilities",
}

list_fields := {
	"repository_ids", "branches", "tags", "environments", "events", "job_workflows",
	"job_workflow_shas", "workflows", "subjects", "runner_environments", "visibilities",
}

# --- tenant and repository ---------------------------------------------------------------

# The token's owner is the rule's owner, by immutable id (and by login too if the rule names it).
owner_pinned(rule) if {
	common.digits(rule.owner_id)
	claims.repository_owner_id == rule.owner_id
	owner_name_ok(rule)
	enterprise_ok(rule)
}

owner_name_ok(rule) if not "owner" in object.keys(rule)

owner_name_ok(rule) if claims.repository_owner == rule.owner

enterprise_ok(rule) if not "enterprise_id" in object.keys(rule)

enterprise_ok(rule) if {
	common.digits(rule.enterprise_id)
	claims.enterprise_id == rule.enterprise_id
}

# The token's repository is one of the rule's, by immutable id.
repository_pinned(rule) if rule.all_repositories == true

repository_pinned(rule) if common.one_of(claims.repository_id, rule.repository_ids)

# --- subject ------------------------------------------------------------------------------

# `sub` parsed: classic `repo:OWNER/REPO:CONTEXT` or, for repositories created (or renamed or
# transferred) after 2026-07-15 and those that opted in, `repo:OWNER@OWNER_ID/REPO@REPO_ID:CONTEXT`.
# `@` cannot occur in GitHub names, so the split is unambiguous. Undefined for other shapes
# (custom `sub` templates): prefer the discrete claims over `sub` anyway.
parse_subject(s) := parsed if {
	is_string(s)
	parts := split(s, ":")
	count(parts) >= 3
	parts[0] == "repo"
	names := split(parts[1], "/")
	count(names) == 2
	owner := split(names[0], "@")
	repo := split(names[1], "@")
	count(owner) == count(repo)
	owner[0] != ""
	repo[0] != ""
	context := concat(":", array.slice(parts, 2, count(parts)))
	context != ""
	parsed := object.union(
		{
			"owner": owner[0],
			"repository": concat("/", [owner[0], repo[0]]),
			"context": context,
			"classic": concat(":", ["repo", concat("/", [owner[0], repo[0]]), context]),
		},
		subject_ids(owner, repo),
	)
}

subject_ids(owner, repo) := {"immutable": false} if count(owner) == 1

subject_ids(owner, repo) := {"immutable": true, "owner_id": owner[1], "repository_id": repo[1]} if {
	count(owner) == 2
	common.digits(owner[1])
	common.digits(repo[1])
}

subject := parse_subject(claims.sub)

# The subject names the same repository as the claims (ids too, in the immutable form).
subject_consistent if {
	subject.repository == claims.repository
	subject.immutable == false
}

subject_consistent if {
	subject.repository == claims.repository
	subject.immutable == true
	subject.owner_id == claims.repository_owner_id
	subject.repository_id == claims.repository_id
}

# The subject is allowed by the rule's `subjects`, in either form: a classic entry also matches
# the immutable subject of the same repository (`repo:o@1/r@2:ref:…` is compared as `repo:o/r:ref:…`
# once its ids are checked against the id claims), so policies survive GitHub's switch.
subject_allowed(rule) if not common.constrains(rule, "subjects")

subject_allowed(rule) if {
	subject_consistent
	some s in rule.subjects
	s in {claims.sub, subject.classic}
}

# --- what ran -----------------------------------------------------------------------------

# The job was defined by exactly this reusable (or local) workflow file at this ref.
job_workflow(ref) if claims.job_workflow_ref == ref

job_workflow_allowed(rule) if {
	job_workflow_ref_ok(rule)
	job_workflow_sha_ok(rule)
	workflow_ref_ok(rule)
}

job_workflow_ref_ok(rule) if not common.constrains(rule, "job_workflows")

job_workflow_ref_ok(rule) if common.one_of(claims.job_workflow_ref, rule.job_workflows)

job_workflow_sha_ok(rule) if not common.constrains(rule, "job_workflow_shas")

job_workflow_sha_ok(rule) if common.one_of(claims.job_workflow_sha, rule.job_workflow_shas)

workflow_ref_ok(rule) if not common.constrains(rule, "workflows")

workflow_ref_ok(rule) if common.one_of(claims.workflow_ref, rule.workflows)

# --- trigger ------------------------------------------------------------------------------

allowed_events(rule) := rule.events if common.constrains(rule, "events")

allowed_events(rule) := default_events if not common.constrains(rule, "events")

# The triggering event is allowed. pull_request_target never is: it runs in the base repository
# with its secrets and OIDC, carries the base ref (refs/heads/main), and often checks out fork code.
# workflow_run is allowed only when the rule lists it.
allowed_event(rule) if {
	common.one_of(claims.event_name, allowed_events(rule))
	not claims.event_name in privileged_events
}

# --- where it ran -------------------------------------------------------------------------

# A branch build of `name` (exact; ref_type and the refs/heads/ prefix both checked).
branch(name) if {
	is_string(name)
	claims.ref_type == "branch"
	claims.ref == concat("", ["refs/heads/", name])
}

# A tag build of `name`.
tag(name) if {
	is_string(name)
	claims.ref_type == "tag"
	claims.ref == concat("", ["refs/tags/", name])
}

branch_name := trim_prefix(claims.ref, "refs/heads/") if {
	claims.ref_type == "branch"
	is_string(claims.ref)
	startswith(claims.ref, "refs/heads/")
}

tag_name := trim_prefix(claims.ref, "refs/tags/") if {
	claims.ref_type == "tag"
	is_string(claims.ref)
	startswith(claims.ref, "refs/tags/")
}

branch_matches(patterns) if common.glob_one_of(branch_name, patterns)

tag_matches(patterns) if common.glob_one_of(tag_name, patterns)

# The ref is one of the rule's branches or tags (no constraint if the rule lists neither).
ref_allowed(rule) if {
	not common.constrains(rule, "branches")
	not common.constrains(rule, "tags")
}

ref_allowed(rule) if branch_matches(rule.branches)

ref_allowed(rule) if tag_matches(rule.tags)

protected_ref_ok(rule) if object.get(rule, "protected_ref", false) == false

protected_ref_ok(rule) if claims.ref_protected == "true"

# The job used this deployment environment.
environment(name) if claims.environment == name

environment_allowed(rule) if not common.constrains(rule, "environments")

environment_allowed(rule) if common.one_of(claims.environment, rule.environments)

runner_allowed(rule) if not common.constrains(rule, "runner_environments")

runner_allowed(rule) if common.one_of(claims.runner_environment, rule.runner_environments)

visibility_allowed(rule) if not common.constrains(rule, "visibilities")

visibility_allowed(rule) if common.one_of(claims.repository_visibility, rule.visibilities)

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := problems if {
	base := common.field_problems(rule, known_fields, list_fields)
	problems := base | _value_problems(rule)
}

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	owner := {"owner_id must be the owner's numeric id as a string (repository_owner_id)" |
		not common.digits(rule.owner_id)
	}
	repos := {"repository_ids is required (or all_repositories: true)" |
		not rule.all_repositories == true
		not common.constrains(rule, "repository_ids")
	}
	repo_ids := {sprintf("repository_ids: %v is not a numeric id string", [id]) |
		some id in object.get(rule, "repository_ids", [])
		not common.digits(id)
	}
	where := {"at least one of branches, tags or environments is required" |
		not common.constrains(rule, "branches")
		not common.constrains(rule, "tags")
		not common.constrains(rule, "environments")
	}
	enterprise := {"enterprise_id must be a numeric id string" |
		"enterprise_id" in object.keys(rule)
		not common.digits(rule.enterprise_id)
	}
	bools := common.bool_field_problems(rule, {"all_repositories", "protected_ref"})
	problems := ((((owner | repos) | repo_ids) | where) | enterprise) | bools
}

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	owner_pinned(rule)
	repository_pinned(rule)
	allowed_event(rule)
	job_workflow_allowed(rule)
	ref_allowed(rule)
	protected_ref_ok(rule)
	environment_allowed(rule)
	runner_allowed(rule)
	visibility_allowed(rule)
	subject_allowed(rule)
}

# Why the rule does not allow the token: the first requirement that fails. Only meaningful when
# `allowed(rule)` is false (it always has a value).
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := sprintf("repository owner %v (id %v) is not the pinned owner id %v", [common.show("repository_owner"), common.show("repository_owner_id"), rule.owner_id]) if {
	not claims.repository_owner_id == rule.owner_id
} else := sprintf("repository owner %v is not %v", [common.show("repository_owner"), rule.owner]) if {
	not owner_name_ok(rule)
} else := sprintf("enterprise id %v is not %v", [common.show("enterprise_id"), rule.enterprise_id]) if {
	not enterprise_ok(rule)
} else := sprintf("repository %v (id %v) is not allowed", [common.show("repository"), common.show("repository_id")]) if {
	not repository_pinned(rule)
} else := sprintf("event %v is never allowed: it runs with the base repository's privileges on code from pull requests", [claims.event_name]) if {
	claims.event_name in privileged_events
} else := sprintf("event %v is not allowed (allowed: %s)", [common.show("event_name"), concat(", ", allowed_events(rule))]) if {
	not allowed_event(rule)
} else := sprintf("job workflow %v is not allowed", [common.show("job_workflow_ref")]) if {
	not job_workflow_ref_ok(rule)
} else := sprintf("job workflow sha %v is not allowed", [common.show("job_workflow_sha")]) if {
	not job_workflow_sha_ok(rule)
} else := sprintf("workflow %v is not allowed", [common.show("workflow_ref")]) if {
	not workflow_ref_ok(rule)
} else := sprintf("ref %v (%v) is not an allowed branch or tag", [common.show("ref"), common.show("ref_type")]) if {
	not ref_allowed(rule)
} else := sprintf("ref %v is not protected", [common.show("ref")]) if {
	not protected_ref_ok(rule)
} else := sprintf("environment %v is not allowed", [common.show("environment")]) if {
	not environment_allowed(rule)
} else := sprintf("runner environment %v is not allowed", [common.show("runner_environment")]) if {
	not runner_allowed(rule)
} else := sprintf("repository visibility %v is not allowed", [common.show("repository_visibility")]) if {
	not visibility_allowed(rule)
} else := sprintf("subject %v is not allowed", [common.show("sub")]) if {
	not subject_allowed(rule)
} else := "the token does not satisfy the rule"
