# CircleCI OIDC tokens (`$CIRCLE_OIDC_TOKEN`, `$CIRCLE_OIDC_TOKEN_V2`).
#
# A rule (the `circleci` object of a route in `data.routes`):
#
#   org_id                     required  the organization UUID; both `iss`
#                                        (https://oidc.circleci.com/org/<org_id>) and the
#                                        oidc.circleci.com/org-id claim must carry it
#   project_ids                required  oidc.circleci.com/project-id values (UUIDs)
#   vcs_origins                required  oidc.circleci.com/vcs-origin values, e.g.
#                                        "github.com/acme/api" (a fork build carries the fork's)
#   branches, tags             one of    glob patterns on the branch / tag of oidc.circleci.com/vcs-ref
#   pipeline_definition_ids    optional  oidc.circleci.com/pipeline-definition-id values
#   context_ids                optional  the job must have at least one of these contexts
#
# A job rerun with SSH (oidc.circleci.com/ssh-rerun true: a person had a shell in it) is always
# refused, and so is a token without the claim. Claim names carry the `oidc.circleci.com/`
# prefix; `ssh-rerun` is a JSON boolean, `context-ids` an array, everything else a string.
package gateward.circleci

import rego.v1

import data.gateward.common

claims := input.token.claims

issuer_prefix := "https://oidc.circleci.com/org/"

known_fields := {
	"org_id", "project_ids", "vcs_origins", "branches", "tags", "pipeline_definition_ids",
	"context_ids",
}

list_fields := {"project_ids", "vcs_origins", "branches", "tags", "pipeline_definition_ids", "context_ids"}

# A CircleCI claim by its short name: claim("project-id") is oidc.circleci.com/project-id.
claim(name) := claims[concat("", ["oidc.circleci.com/", name])]

show(name) := object.get(claims, concat("", ["oidc.circleci.com/", name]), "(missing)")

# --- tenant and project -------------------------------------------------------------------

# The token comes from organization `org_id`: the per-org issuer and the org-id claim agree.
org_pinned(rule) if {
	common.uuid_string(rule.org_id)
	claim("org-id") == rule.org_id
	claims.iss == concat("", [issuer_prefix, rule.org_id])
}

project_pinned(rule) if common.one_of(claim("project-id"), rule.project_ids)

pipeline_definition_allowed(rule) if not common.constrains(rule, "pipeline_definition_ids")

pipeline_definition_allowed(rule) if common.one_of(claim("pipeline-definition-id"), rule.pipeline_definition_ids)

# --- who ran it and from where -------------------------------------------------------------

# A person reran the job with SSH.
ssh_rerun if claim("ssh-rerun") == true

# The claim is present and false (absent or mistyped is not "no").
no_ssh_rerun if claim("ssh-rerun") == false

# The build's repository is one of `origins` (a fork build carries the fork's origin).
vcs_origin_allowed(rule) if common.one_of(claim("vcs-origin"), rule.vcs_origins)

# A branch build of `name` (exact).
branch(name) if {
	is_string(name)
	claim("vcs-ref") == concat("", ["refs/heads/", name])
}

# A tag build of `name` (exact).
tag(name) if {
	is_string(name)
	claim("vcs-ref") == concat("", ["refs/tags/", name])
}

branch_name := trim_prefix(claim("vcs-ref"), "refs/heads/") if {
	is_string(claim("vcs-ref"))
	startswith(claim("vcs-ref"), "refs/heads/")
}

tag_name := trim_prefix(claim("vcs-ref"), "refs/tags/") if {
	is_string(claim("vcs-ref"))
	startswith(claim("vcs-ref"), "refs/tags/")
}

ref_allowed(rule) if common.glob_one_of(branch_name, rule.branches)

ref_allowed(rule) if common.glob_one_of(tag_name, rule.tags)

# The job has context `id` (restricted contexts gate jobs on approvals and groups).
has_context(id) if {
	is_array(claim("context-ids"))
	some c in claim("context-ids")
	c == id
}

context_allowed(rule) if not common.constrains(rule, "context_ids")

context_allowed(rule) if {
	some id in rule.context_ids
	has_context(id)
}

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := common.field_problems(rule, known_fields, list_fields) | _value_problems(rule)

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	org := {"org_id must be the organization UUID (lower case)" | not common.uuid_string(rule.org_id)}
	required := {sprintf("%s is required", [k]) |
		some k in ["project_ids", "vcs_origins"]
		not common.constrains(rule, k)
	}
	where := {"at least one of branches or tags is required" |
		not common.constrains(rule, "branches")
		not common.constrains(rule, "tags")
	}
	problems := (org | required) | where
}

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	org_pinned(rule)
	project_pinned(rule)
	no_ssh_rerun
	vcs_origin_allowed(rule)
	ref_allowed(rule)
	pipeline_definition_allowed(rule)
	context_allowed(rule)
}

# Why the rule does not allow the token: the first requirement that fails.
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := sprintf("organization %v (issuer %v) is not the pinned organization %v", [show("org-id"), common.show("iss"), rule.org_id]) if {
	not org_pinned(rule)
} else := sprintf("project %v is not allowed", [show("project-id")]) if {
	not project_pinned(rule)
} else := "the job was rerun with SSH: a person had a shell in it" if {
	ssh_rerun
} else := sprintf("ssh-rerun claim is %v, not false", [show("ssh-rerun")]) if {
	not no_ssh_rerun
} else := sprintf("repository %v is not allowed (a fork?)", [show("vcs-origin")]) if {
	not vcs_origin_allowed(rule)
} else := sprintf("ref %v is not an allowed branch or tag", [show("vcs-ref")]) if {
	not ref_allowed(rule)
} else := sprintf("pipeline definition %v is not allowed", [show("pipeline-definition-id")]) if {
	not pipeline_definition_allowed(rule)
} else := "the job has none of the required contexts" if {
	not context_allowed(rule)
} else := "the token does not satisfy the rule"
