# GitLab CI/CD ID tokens (`id_tokens:`), gitlab.com or self-managed.
#
# A rule (the `gitlab` object of a route in `data.routes`):
#
#   namespace_id                   namespace_id of the group (string)      } at least one;
#   project_ids                    project_id values (strings)             } both checked if given
#   branches, tags                 glob patterns on the branch / tag name (`*` stops at `/`)
#   environments                   allowed `environment` values
#                                  (at least one of branches, tags, environments is required)
#   pipeline_sources               allowed pipeline_source values; default push, web, schedule
#                                  (merge_request_event runs unmerged code: list it to allow it)
#   require_protected_ref          default true: ref_protected must be "true"
#   require_protected_environment  default true: environment_protected must be "true" when the
#                                  rule lists environments
#   ci_config_ref_uris             exact ci_config_ref_uri values (which pipeline definition)
#   runner_environments            e.g. ["gitlab-hosted"]
#   max_age_seconds                the token was issued at most this long ago (input.now);
#                                  GitLab tokens live as long as the job timeout
#   allow_forks                    default false: fork merge request pipelines (project_id is
#                                  not job_project_id) are refused, even inside a pinned namespace
#   job_claims_optional            default false: GitLab before 18.4 has no job_project_* claims;
#                                  true accepts tokens without them (fork MRs then undetectable)
#
# Both the project whose code runs (`project_*`, the fork for a fork merge request) and the
# project the job runs in (`job_project_*`) must be pinned ones: a fork's merge request pipeline
# running in the parent project is refused. `ref` is a short name: a tag named `main` looks like
# branch `main`, so `ref_type` is always checked (there is no `mr` ref_type).
package gateward.gitlab

import rego.v1

import data.gateward.common

claims := input.token.claims

default_pipeline_sources := ["push", "web", "schedule"]

known_fields := {
	"namespace_id", "project_ids", "branches", "tags", "environments", "pipeline_sources",
	"require_protected_ref", "require_protected_environment", "ci_config_ref_uris",
	"runner_environments", "max_age_seconds", "job_claims_optional", "allow_forks",
}

list_fields := {
	"project_ids", "branches", "tags", "environments", "pipeline_sources", "ci_config_ref_uris",
	"runner_environments",
}

# --- tenant and project -------------------------------------------------------------------

# The token carries the job_* claims (GitLab 18.4+).
has_job_claims if {
	common.digits(claims.job_project_id)
	common.digits(claims.job_namespace_id)
}

# A merge request pipeline from a fork, running in another project.
from_fork if {
	has_job_claims
	claims.project_id != claims.job_project_id
}

fork_ok(rule) if not from_fork

fork_ok(rule) if rule.allow_forks == true

job_claims_ok(rule) if has_job_claims

job_claims_ok(rule) if {
	not has_job_claims
	rule.job_claims_optional == true
}

# Both the source namespace and the namespace the job ran in are the rule's (by id).
namespace_pinned(rule) if not "namespace_id" in object.keys(rule)

namespace_pinned(rule) if {
	common.digits(rule.namespace_id)
	claims.namespace_id == rule.namespace_id
	job_namespace_ok(rule.namespace_id)
}

job_namespace_ok(_) if not has_job_claims

job_namespace_ok(id) if claims.job_namespace_id == id

# Both the source project and the project the job ran in are among the rule's (by id).
project_pinned(rule) if not common.constrains(rule, "project_ids")

project_pinned(rule) if {
	common.one_of(claims.project_id, rule.project_ids)
	job_project_ok(rule.project_ids)
}

job_project_ok(_) if not has_job_claims

job_project_ok(ids) if common.one_of(claims.job_project_id, ids)

tenant_pinned(rule) if {
	count({k | some k in ["namespace_id", "project_ids"]; k in object.keys(rule)}) > 0
	job_claims_ok(rule)
	fork_ok(rule)
	namespace_pinned(rule)
	project_pinned(rule)
}

# --- where it ran -------------------------------------------------------------------------

# A branch pipeline of `name`: ref_type, ref and (16.0+) ref_path agree.
branch(name) if {
	claims.ref_type == "branch"
	claims.ref == name
	ref_path_ok("refs/heads/")
}

# A tag pipeline of `name`.
tag(name) if {
	claims.ref_type == "tag"
	claims.ref == name
	ref_path_ok("refs/tags/")
}

ref_path_ok(_) if not "ref_path" in object.keys(claims)

ref_path_ok(prefix) if {
	is_string(claims.ref)
	claims.ref_path == concat("", [prefix, claims.ref])
}

branch_matches(patterns) if {
	claims.ref_type == "branch"
	ref_path_ok("refs/heads/")
	common.glob_one_of(claims.ref, patterns)
}

tag_matches(patterns) if {
	claims.ref_type == "tag"
	ref_path_ok("refs/tags/")
	common.glob_one_of(claims.ref, patterns)
}

ref_allowed(rule) if {
	not common.constrains(rule, "branches")
	not common.constrains(rule, "tags")
}

ref_allowed(rule) if branch_matches(rule.branches)

ref_allowed(rule) if tag_matches(rule.tags)

# The ref is protected (only as strong as the project's protection rules).
protected_ref if claims.ref_protected == "true"

protected_ref_ok(rule) if object.get(rule, "require_protected_ref", true) == false

protected_ref_ok(rule) if protected_ref

# The job deploys to environment `name`.
environment(name) if claims.environment == name

protected_environment if claims.environment_protected == "true"

environment_allowed(rule) if not common.constrains(rule, "environments")

environment_allowed(rule) if {
	common.one_of(claims.environment, rule.environments)
	protected_environment_ok(rule)
}

protected_environment_ok(rule) if object.get(rule, "require_protected_environment", true) == false

protected_environment_ok(rule) if protected_environment

# --- how it was triggered and what ran ----------------------------------------------------

allowed_pipeline_sources(rule) := rule.pipeline_sources if common.constrains(rule, "pipeline_sources")

allowed_pipeline_sources(rule) := default_pipeline_sources if not common.constrains(rule, "pipeline_sources")

pipeline_source_allowed(rule) if common.one_of(claims.pipeline_source, allowed_pipeline_sources(rule))

ci_config_allowed(rule) if not common.constrains(rule, "ci_config_ref_uris")

ci_config_allowed(rule) if common.one_of(claims.ci_config_ref_uri, rule.ci_config_ref_uris)

runner_allowed(rule) if not common.constrains(rule, "runner_environments")

runner_allowed(rule) if common.one_of(claims.runner_environment, rule.runner_environments)

age_ok(rule) if not "max_age_seconds" in object.keys(rule)

age_ok(rule) if common.issued_within(rule.max_age_seconds)

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := common.field_problems(rule, known_fields, list_fields) | _value_problems(rule)

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	tenant := {"namespace_id or project_ids is required" |
		not "namespace_id" in object.keys(rule)
		not common.constrains(rule, "project_ids")
	}
	ns := {"namespace_id must be a numeric id string" |
		"namespace_id" in object.keys(rule)
		not common.digits(rule.namespace_id)
	}
	ids := {sprintf("project_ids: %v is not a numeric id string", [id]) |
		some id in object.get(rule, "project_ids", [])
		not common.digits(id)
	}
	where := {"at least one of branches, tags or environments is required" |
		not common.constrains(rule, "branches")
		not common.constrains(rule, "tags")
		not common.constrains(rule, "environments")
	}
	age := {"max_age_seconds must be a positive number" |
		"max_age_seconds" in object.keys(rule)
		not _positive(rule.max_age_seconds)
	}
	bools := common.bool_field_problems(rule, {"require_protected_ref", "require_protected_environment", "job_claims_optional", "allow_forks"})
	problems := ((((tenant | ns) | ids) | where) | age) | bools
}

_positive(x) if {
	is_number(x)
	x > 0
}

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	tenant_pinned(rule)
	pipeline_source_allowed(rule)
	ref_allowed(rule)
	protected_ref_ok(rule)
	environment_allowed(rule)
	ci_config_allowed(rule)
	runner_allowed(rule)
	age_ok(rule)
}

# Why the rule does not allow the token: the first requirement that fails.
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := "the token has no job_project_id/job_namespace_id claims (GitLab before 18.4; set job_claims_optional to accept)" if {
	not job_claims_ok(rule)
} else := sprintf("merge request pipeline from fork %v (project %v) running in project %v (%v)", [common.show("project_path"), common.show("project_id"), common.show("job_project_path"), common.show("job_project_id")]) if {
	not tenant_pinned(rule)
	from_fork
} else := sprintf("namespace %v (id %v) is not the pinned namespace id %v", [common.show("namespace_path"), common.show("namespace_id"), rule.namespace_id]) if {
	not namespace_pinned(rule)
} else := sprintf("project %v (id %v) is not allowed", [common.show("project_path"), common.show("project_id")]) if {
	not project_pinned(rule)
} else := sprintf("pipeline source %v is not allowed (allowed: %s)", [common.show("pipeline_source"), concat(", ", allowed_pipeline_sources(rule))]) if {
	not pipeline_source_allowed(rule)
} else := sprintf("ref %v (%v) is not an allowed branch or tag", [common.show("ref"), common.show("ref_type")]) if {
	not ref_allowed(rule)
} else := sprintf("ref %v is not protected", [common.show("ref")]) if {
	not protected_ref_ok(rule)
} else := sprintf("environment %v is not allowed", [common.show("environment")]) if {
	not common.one_of(claims.environment, object.get(rule, "environments", []))
	common.constrains(rule, "environments")
} else := sprintf("environment %v is not protected", [common.show("environment")]) if {
	not environment_allowed(rule)
} else := sprintf("pipeline definition %v is not allowed", [common.show("ci_config_ref_uri")]) if {
	not ci_config_allowed(rule)
} else := sprintf("runner environment %v is not allowed", [common.show("runner_environment")]) if {
	not runner_allowed(rule)
} else := "the token's age is unknown: it has no numeric iat claim" if {
	# Before the next branch, whose message needs the age: an else branch whose value is
	# undefined falls through on OPA but leaves the whole rule undefined on regorus.
	not age_ok(rule)
	not is_number(common.token_age)
} else := sprintf("token issued %v s ago, more than %v s", [common.token_age, rule.max_age_seconds]) if {
	not age_ok(rule)
} else := "the token does not satisfy the rule"
