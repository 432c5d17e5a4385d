# Buildkite agent OIDC tokens (`buildkite-agent oidc request-token`).
#
# The issuer https://agent.buildkite.com is shared by every Buildkite organization: a valid
# signature proves only "some Buildkite job", so every rule pins the organization.
#
# A rule (the `buildkite` object of a route in `data.routes`):
#
#   organization_id      } at least one; both checked if given. organization_id is immutable but
#   organization_slug    } only present if the job asked for it (`--claim organization_id`)
#   pipeline_ids         } at least one; both checked if given. pipeline_id also needs
#   pipeline_slugs       } `--claim pipeline_id`
#   branches, tags       at least one: glob patterns on build_branch / build_tag (`*` stops at `/`)
#   build_sources        optional  allowed build_source values (ui, api, webhook, trigger_job, schedule)
#   step_keys            optional  allowed step_key values (chosen by pipeline authors)
#   runner_environments  optional  e.g. ["self-hosted"]
#   cluster_ids          optional  cluster_id values (needs `--claim cluster_id`)
#   queue_ids            optional  queue_id values (needs `--claim queue_id`)
#
# Optional claims that were not requested are absent, and an absent claim never matches.
# build_branch does not prove the code came from that branch (a later step can check out
# anything), and step keys and the pipeline YAML are author-controlled.
package gateward.buildkite

import rego.v1

import data.gateward.common

claims := input.token.claims

known_fields := {
	"organization_id", "organization_slug", "pipeline_ids", "pipeline_slugs", "branches", "tags",
	"build_sources", "step_keys", "runner_environments", "cluster_ids", "queue_ids",
}

list_fields := {
	"pipeline_ids", "pipeline_slugs", "branches", "tags", "build_sources", "step_keys",
	"runner_environments", "cluster_ids", "queue_ids",
}

# --- tenant and pipeline ------------------------------------------------------------------

organization_pinned(rule) if {
	count({k | some k in ["organization_id", "organization_slug"]; k in object.keys(rule)}) > 0
	organization_id_ok(rule)
	organization_slug_ok(rule)
}

organization_id_ok(rule) if not "organization_id" in object.keys(rule)

organization_id_ok(rule) if {
	is_string(rule.organization_id)
	claims.organization_id == rule.organization_id
}

organization_slug_ok(rule) if not "organization_slug" in object.keys(rule)

organization_slug_ok(rule) if {
	is_string(rule.organization_slug)
	claims.organization_slug == rule.organization_slug
}

pipeline_allowed(rule) if {
	count({k | some k in ["pipeline_ids", "pipeline_slugs"]; common.constrains(rule, k)}) > 0
	pipeline_id_ok(rule)
	pipeline_slug_ok(rule)
}

pipeline_id_ok(rule) if not common.constrains(rule, "pipeline_ids")

pipeline_id_ok(rule) if common.one_of(claims.pipeline_id, rule.pipeline_ids)

pipeline_slug_ok(rule) if not common.constrains(rule, "pipeline_slugs")

pipeline_slug_ok(rule) if common.one_of(claims.pipeline_slug, rule.pipeline_slugs)

# --- where it ran -------------------------------------------------------------------------

# A build without a tag (build_tag is null or absent).
untagged if not claims.build_tag

untagged if claims.build_tag == null

# A branch build of `name` (exact): not a tag build, whatever build_branch says.
branch(name) if {
	untagged
	claims.build_branch == name
}

# A tag build of `name` (exact).
tag(name) if claims.build_tag == name

ref_allowed(rule) if {
	untagged
	common.glob_one_of(claims.build_branch, rule.branches)
}

ref_allowed(rule) if common.glob_one_of(claims.build_tag, rule.tags)

# --- optional constraints -----------------------------------------------------------------

optional_claims := {
	"build_sources": "build_source",
	"step_keys": "step_key",
	"runner_environments": "runner_environment",
	"cluster_ids": "cluster_id",
	"queue_ids": "queue_id",
}

# Every optional list the rule gives contains the claim's value (an absent or null claim fails).
optional_ok(rule) if {
	every field, name in optional_claims {
		optional_field_ok(rule, field, name)
	}
}

optional_field_ok(rule, field, _) if not common.constrains(rule, field)

optional_field_ok(rule, field, name) if common.one_of(claims[name], rule[field])

# --- the whole rule -----------------------------------------------------------------------

rule_problems(rule) := common.field_problems(rule, known_fields, list_fields) | _value_problems(rule)

_value_problems(rule) := set() if not is_object(rule)

_value_problems(rule) := problems if {
	is_object(rule)
	org := {"organization_id or organization_slug is required" |
		not "organization_id" in object.keys(rule)
		not "organization_slug" in object.keys(rule)
	}
	org_types := {sprintf("%s must be a string", [k]) |
		some k in ["organization_id", "organization_slug"]
		k in object.keys(rule)
		not is_string(rule[k])
	}
	pipeline := {"pipeline_ids or pipeline_slugs is required" |
		not common.constrains(rule, "pipeline_ids")
		not common.constrains(rule, "pipeline_slugs")
	}
	where := {"at least one of branches or tags is required" |
		not common.constrains(rule, "branches")
		not common.constrains(rule, "tags")
	}
	problems := ((org | org_types) | pipeline) | where
}

# Every requirement of the rule holds.
allowed(rule) if {
	count(rule_problems(rule)) == 0
	organization_pinned(rule)
	pipeline_allowed(rule)
	ref_allowed(rule)
	optional_ok(rule)
}

# Why the rule does not allow the token: the first requirement that fails.
denial(rule) := sprintf("rule misconfigured: %s", [concat("; ", sort(rule_problems(rule)))]) if {
	count(rule_problems(rule)) > 0
} else := "the token has no organization_id claim (request it with `buildkite-agent oidc request-token --claim organization_id`)" if {
	"organization_id" in object.keys(rule)
	not "organization_id" in object.keys(claims)
} else := sprintf("organization %v (id %v) is not the pinned organization", [common.show("organization_slug"), common.show("organization_id")]) if {
	not organization_pinned(rule)
} else := "the token has no pipeline_id claim (request it with `--claim pipeline_id`)" if {
	common.constrains(rule, "pipeline_ids")
	not "pipeline_id" in object.keys(claims)
} else := sprintf("pipeline %v (id %v) is not allowed", [common.show("pipeline_slug"), common.show("pipeline_id")]) if {
	not pipeline_allowed(rule)
} else := sprintf("branch %v (tag %v) is not an allowed branch or tag", [common.show("build_branch"), common.show("build_tag")]) if {
	not ref_allowed(rule)
} else := sprintf("%v %v is not allowed", [failing[0], common.show(failing[0])]) if {
	failing := sort([name | some field; name := optional_claims[field]; not optional_field_ok(rule, field, name)])
	count(failing) > 0
} else := "the token does not satisfy the rule"
