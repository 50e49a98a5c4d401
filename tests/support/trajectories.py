"""Hand-written trajectories for the four scenarios, used by several tests."""

from __future__ import annotations

from tests.support.tasks import act, dispatch

HARD_WALKTHROUGH = [
    act("delegate", "alert_triage", "triage_analyst"),
    act("delegate", "enrich_logs", "investigator_alpha"),
    act("delegate", "check_dashboards", "monitor"),
    act("retry", "enrich_logs", "investigator_beta"),
    act("delegate", "check_dependencies", "investigator_alpha"),
    act("delegate", "notify_stakeholders", "communicator"),
    act("delegate", "root_cause_analysis", "senior_engineer"),
    act("delegate", "deploy_hotfix", "deployer"),
    act("delegate", "update_status_page", "communicator"),
    act("delegate", "validate_fix", "senior_engineer"),
    act("delegate", "monitor_recovery", "monitor"),
    act("wait"),
    act("wait"),
    act("synthesize"),
]

EASY_PLAN = [
    act("delegate", "technical_design", "tech_lead"),
    act("delegate", "implement_backend", "backend_dev"),
    dispatch(("implement_frontend", "frontend_dev"), ("write_tests", "qa_engineer")),
    act("delegate", "run_tests", "qa_engineer"),
    act("delegate", "review_and_merge", "tech_lead"),
    act("synthesize"),
]

MEDIUM_PLAN = [
    act("delegate", "checkout_code", "ci_runner"),
    dispatch(
        ("run_linter", "ci_runner"),
        ("run_unit_tests", "test_service"),
        ("run_security_scan", "security_scanner"),
    ),
    act("wait"),
    act("retry", "run_security_scan", "security_scanner"),
    act("wait"),
    act("delegate", "build_image", "ci_runner"),
    act("delegate", "push_registry", "registry_service"),
    act("delegate", "deploy_staging", "deploy_service"),
    act("delegate", "run_smoke_tests", "test_service"),
    act("wait"),
    act("delegate", "deploy_production", "deploy_service"),
    act("synthesize"),
]

EXPERT_PLAN = [
    act("delegate", "morning_check_in", "personal_agent"),
    dispatch(
        ("assess_sleep_energy", "health_agent"),
        ("assess_career_deadlines", "career_agent"),
        ("assess_personal_commitments", "personal_agent"),
    ),
    act("wait"),
    act("delegate", "plan_day_schedule", "executive_assistant"),
    act("wait"),
    dispatch(("start_focus_session", "focus_agent"), ("process_inbox", "mail_agent")),
    dispatch(("deep_work_block", "companion"), ("handle_urgent_request", "executive_assistant")),
    act("wait"),
    act("delegate", "midday_health_check", "health_agent"),
    act("delegate", "resolve_priority_conflict", "companion"),
    act("wait"),
    dispatch(("afternoon_execution", "companion"), ("notify_stakeholders", "mail_agent")),
    act("wait"),
    act("delegate", "synthesize_day_report", "mail_agent"),
    act("synthesize"),
]

PLANS = {"easy": EASY_PLAN, "medium": MEDIUM_PLAN, "hard": HARD_WALKTHROUGH, "expert": EXPERT_PLAN}

# Hard, as fast as the DAG allows: three investigation tracks at once, senior
# engineer on the critical path, two monitoring waits.
HARD_FAST = [
    act("delegate", "alert_triage", "triage_analyst"),
    dispatch(
        ("enrich_logs", "investigator_beta"),
        ("check_dashboards", "monitor"),
        ("check_dependencies", "investigator_alpha"),
    ),
    act("delegate", "notify_stakeholders", "communicator"),
    dispatch(("root_cause_analysis", "senior_engineer"), ("update_status_page", "communicator")),
    act("delegate", "deploy_hotfix", "senior_engineer"),
    act("delegate", "validate_fix", "senior_engineer"),
    act("delegate", "monitor_recovery", "monitor"),
    act("wait"),
    act("wait"),
    act("synthesize"),
]

# Hard, as cheaply as possible: the cheapest able agent for every subtask.
HARD_CHEAP = [
    act("delegate", "alert_triage", "triage_analyst"),
    dispatch(
        ("enrich_logs", "investigator_beta"),
        ("check_dashboards", "monitor"),
        ("check_dependencies", "investigator_alpha"),
    ),
    act("delegate", "notify_stakeholders", "communicator"),
    act("delegate", "update_status_page", "communicator"),
    act("delegate", "root_cause_analysis", "investigator_alpha"),
    act("wait"),
    act("delegate", "deploy_hotfix", "deployer"),
    act("wait"),
    act("delegate", "validate_fix", "senior_engineer"),
    act("delegate", "monitor_recovery", "monitor"),
    act("wait"),
    act("wait"),
    act("synthesize"),
]
