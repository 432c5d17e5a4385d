package walkthrough.step1_test

import rego.v1

import data.walkthrough.step1

# Claims as GitHub issues them for a push to main of octo-org/deploy in environment prod.
main_push := {
	"iss": "https://token.actions.githubusercontent.com",
	"sub": "repo:octo-org/deploy:environment:prod",
	"repository": "octo-org/deploy",
	"repository_id": "74839201",
	"repository_owner": "octo-org",
	"repository_owner_id": "9919",
	"ref": "refs/heads/main",
	"ref_type": "branch",
	"event_name": "push",
	"environment": "prod",
}

deploy := {"method": "POST", "path": "/deploy"}

decide(claims, request) := d if {
	d := step1.decision with input as {"token": {"claims": claims}, "request": request}
}

test_push_to_main_in_prod_is_allowed if decide(main_push, deploy).allow

test_squatted_org_with_the_same_names_is_denied if {
	not decide(object.union(main_push, {"repository_owner_id": "31337", "repository_id": "1"}), deploy).allow
}

test_tag_named_main_is_denied if {
	not decide(object.union(main_push, {"ref": "refs/tags/main", "ref_type": "tag"}), deploy).allow
}

test_pull_request_target_on_main_is_denied if {
	not decide(object.union(main_push, {"event_name": "pull_request_target"}), deploy).allow
}

test_other_environment_is_denied if {
	not decide(object.union(main_push, {"environment": "staging"}), deploy).allow
}

test_other_route_is_denied if {
	not decide(main_push, {"method": "GET", "path": "/deploy"}).allow
}
