package walkthrough.step2_test

import rego.v1

import data.walkthrough.step1_test.deploy
import data.walkthrough.step1_test.main_push
import data.walkthrough.step2

decide(claims) := d if {
	d := step2.decision with input as {"token": {"claims": claims}, "request": deploy}
}

test_push_to_main_in_prod_is_allowed if decide(main_push).allow

test_a_denial_names_the_failed_requirement if {
	d := decide(object.union(main_push, {"event_name": "pull_request_target"}))
	not d.allow
	contains(d.reason, "pull_request_target")
}

test_squatted_org_is_denied_with_the_id_in_the_reason if {
	d := decide(object.union(main_push, {"repository_owner_id": "31337"}))
	not d.allow
	contains(d.reason, "31337")
}
