-- Template variables of issue 12 (items 4 and 5) in the workflow rules:
-- organization.address, organization.locale, invoice.pay_url and the
-- scheduled summary's figures (summary.open_invoices, .overdue_invoices,
-- .open_balance, .reminders_sent_yesterday) may be used in a workflow's own
-- texts, as the default templates do. automation_workflow_rules() redefined
-- from 20261202000100 (the same document plus these names, and issue 12's
-- message classes: every trigger type's trigger_config accepts message_class
-- (transactional | non_transactional, the workflow's override of its trigger
-- type's class) and templates may use {{unsubscribe_url}}; equal to
-- shared/workflow/rules.json). The one definition of this week's changes.
-- Idempotent.

create or replace function public.automation_workflow_rules() returns jsonb
language sql immutable parallel safe as $fn$
  select $rules$
{
  "version": 1,
  "trigger_types": [
    {
      "name": "scheduled",
      "config": [
        {"key": "frequency", "type": "enum", "values": ["every_minute", "hourly", "daily", "weekly", "monthly"]},
        {"key": "hour", "type": "integer", "min": 0, "max": 23},
        {"key": "minute", "type": "integer", "min": 0, "max": 59},
        {"key": "day_of_week", "type": "integer", "min": 0, "max": 6},
        {"key": "day_of_month", "type": "integer", "min": 1, "max": 31},
        {"key": "audience", "type": "enum", "values": ["organization", "clients"]},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "invoice_overdue",
      "config": [
        {"key": "days_after_due", "type": "integer_list", "max_items": 20, "min": 0, "max": 365},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "maintenance_due",
      "config": [
        {"key": "months_after_service", "type": "integer", "min": 1, "max": 120},
        {"key": "job_type", "type": "string", "max_chars": 100},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "stale_job",
      "config": [
        {"key": "days_inactive", "type": "integer", "min": 1, "max": 365},
        {"key": "statuses", "type": "string_list", "max_items": 20, "max_chars": 50},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    },
    {
      "name": "appointment",
      "config": [
        {"key": "hours_before", "type": "integer", "min": 1, "max": 720},
        {"key": "message_class", "type": "enum", "values": ["transactional", "non_transactional"]}
      ]
    }
  ],
  "steps": {
    "max_steps": 20,
    "types": [
      {
        "name": "send_email",
        "fields": [
          {"key": "subject", "type": "string", "max_chars": 500, "template": true},
          {"key": "body", "type": "string", "max_bytes": 65536, "template": true},
          {"key": "html", "type": "string", "max_bytes": 65536, "template": true}
        ]
      },
      {
        "name": "send_sms",
        "fields": [
          {"key": "body", "type": "string", "max_chars": 1600, "template": true}
        ]
      },
      {
        "name": "delay",
        "fields": [
          {"key": "minutes", "type": "integer", "min": 0, "max": 525600, "unit_minutes": 1},
          {"key": "hours", "type": "integer", "min": 0, "max": 8760, "unit_minutes": 60},
          {"key": "days", "type": "integer", "min": 0, "max": 365, "unit_minutes": 1440}
        ],
        "total_minutes": {"min": 1, "max": 525600, "message": "a delay must be from 1 minute to 365 days"}
      }
    ]
  },
  "variables": [
    "client.first_name", "client.last_name", "client.full_name", "client.email", "client.phone",
    "organization.name", "organization.phone", "organization.email", "organization.portal_url",
    "invoice.number", "invoice.total", "invoice.balance", "invoice.due_date", "invoice.days_overdue", "invoice.portal_url",
    "job.title", "job.type", "job.scheduled_start", "job.scheduled_date", "job.address", "job.completed_at",
    "unsubscribe_url",
    "organization.address", "organization.locale", "invoice.pay_url",
    "summary.open_invoices", "summary.overdue_invoices", "summary.open_balance", "summary.reminders_sent_yesterday"
  ]
}
$rules$::jsonb
$fn$;
comment on function public.automation_workflow_rules() is
  'The workflow rules document (trigger types and their trigger_config keys, step types and their fields, bounds, template variables), equal to shared/workflow/rules.json. automation_workflow_problems() interprets it.';
revoke all on function public.automation_workflow_rules() from public, anon, authenticated;
grant execute on function public.automation_workflow_rules() to service_role;
