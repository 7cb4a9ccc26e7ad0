-- Rows of a user's install of the replaced system (REPLACED_SYSTEM.md):
-- three organisations and a user without one, text-id clients and jobs,
-- uuid invoices, workflows in the builder's shapes (and older ones),
-- execution history of every status (months-old pending rows in both
-- trigger_data shapes), schedules and analytics. Fixed ids (the Go package
-- exports the ones tests need); times relative to now(). Idempotent: every
-- insert is `on conflict do nothing`, and the one update that fires the row
-- trigger only matches once.
--
-- Organisations (no organisations table: profiles.organization_id):
--   A 10000000-0000-4000-8000-00000000000a  users a1 (America/New_York),
--     a2 (timezone NULL), a3 (America/Chicago): one organisation, three zones
--   B 10000000-0000-4000-8000-00000000000b  user b1 (Europe/London)
--   C 10000000-0000-4000-8000-00000000000c  user c1 (Australia/Sydney)
--   user f1 has a profile without organisation or zone (a fresh sign-up)

insert into auth.users (id, email) values
  ('20000000-0000-4000-8000-0000000000a1', 'owner.a@example.test'),
  ('20000000-0000-4000-8000-0000000000a2', 'tech.a@example.test'),
  ('20000000-0000-4000-8000-0000000000a3', 'dispatch.a@example.test'),
  ('20000000-0000-4000-8000-0000000000b1', 'owner.b@example.test'),
  ('20000000-0000-4000-8000-0000000000c1', 'owner.c@example.test'),
  ('20000000-0000-4000-8000-0000000000f1', 'new.user@example.test')
on conflict do nothing;

insert into public.profiles (id, organization_id, name, role, timezone, company_name, company_email, company_phone,
                             company_address, company_website) values
  ('20000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a', 'Owner A', 'admin', 'America/New_York',
   'Brightside Plumbing', 'office@brightside.example.test', '(555) 010-0100', '1 Main St, Springfield', 'https://brightside.example.test'),
  ('20000000-0000-4000-8000-0000000000a2', '10000000-0000-4000-8000-00000000000a', 'Tech A', 'technician', null,
   null, null, null, null, null),
  ('20000000-0000-4000-8000-0000000000a3', '10000000-0000-4000-8000-00000000000a', 'Dispatcher A', 'dispatcher', 'America/Chicago',
   'Brightside Plumbing', null, null, null, null),
  ('20000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b', 'Owner B', 'admin', 'Europe/London',
   'Thames Heating', 'hello@thames.example.test', '020 7946 0000', '2 River Rd, London', null),
  ('20000000-0000-4000-8000-0000000000c1', '10000000-0000-4000-8000-00000000000c', 'Owner C', 'admin', 'Australia/Sydney',
   'Harbour Electrical', 'jobs@harbour.example.test', '02 9999 0000', null, 'https://harbour.example.test'),
  ('20000000-0000-4000-8000-0000000000f1', null, null, 'admin', null, null, null, null, null, null)
on conflict do nothing;

-- clients: 'C-2000'..; name not null, first/last name optional, phones as typed
insert into public.clients (id, user_id, name, first_name, last_name, company, email, phone, address, status, tags, created_at) values
  ('C-2000', '20000000-0000-4000-8000-0000000000a1', 'Maria Lopez', 'Maria', 'Lopez', null, 'maria@example.test', '(555) 010-2000', '12 Oak Ave', 'active', '{residential}', now() - interval '400 days'),
  ('C-2001', '20000000-0000-4000-8000-0000000000a2', 'Ben Carter', 'Ben', 'Carter', null, 'ben@example.test', null, null, 'active', '{}', now() - interval '300 days'),
  ('C-2002', '20000000-0000-4000-8000-0000000000a1', 'Harbor Cafe', null, null, 'Harbor Cafe LLC', null, '+15550102002', '3 Pier St', 'active', '{commercial,vip}', now() - interval '250 days'),
  ('C-2003', '20000000-0000-4000-8000-0000000000b1', 'Oliver Smith', 'Oliver', 'Smith', null, 'oliver@example.test', '07700 900123', null, 'active', '{}', now() - interval '200 days'),
  ('C-2004', '20000000-0000-4000-8000-0000000000b1', 'Grace Hall', 'Grace', 'Hall', null, null, null, null, 'active', '{}', now() - interval '190 days'),
  ('C-2005', '20000000-0000-4000-8000-0000000000c1', 'Jack Wilson', 'Jack', 'Wilson', null, 'jack@example.test', '0412 345 678', null, 'active', '{}', now() - interval '180 days'),
  ('C-2006', '20000000-0000-4000-8000-0000000000a3', 'Priya Patel', 'Priya', 'Patel', null, 'priya@example.test', '555-010-2006', null, 'inactive', '{}', now() - interval '150 days'),
  ('C-2007', '20000000-0000-4000-8000-0000000000a1', 'Tom Reed', 'Tom', 'Reed', null, 'tom@example.test', null, null, 'active', '{}', now() - interval '900 days')
on conflict do nothing;

-- clients.organization_id (newer installs only): filled from the owner's
-- profile, except C-2007, a row from before the column existed
do $fixture$
begin
  if exists (select 1 from information_schema.columns
             where table_schema = 'public' and table_name = 'clients' and column_name = 'organization_id') then
    update public.clients c set organization_id = p.organization_id
    from public.profiles p
    where p.id = c.user_id and c.organization_id is null
      and c.id in ('C-2000', 'C-2001', 'C-2002', 'C-2003', 'C-2004', 'C-2005', 'C-2006');
  end if;
end
$fixture$;

-- jobs: 'J-1000'..; statuses as organisations typed them; no completed_at
insert into public.jobs (id, user_id, client_id, title, service, job_type, status, schedule_start, schedule_end, date,
                         tags, address, created_at, deleted_at) values
  ('J-1000', '20000000-0000-4000-8000-0000000000a1', 'C-2000', 'Annual boiler service', 'Heating', 'maintenance', 'completed',
   now() - interval '8 months', now() - interval '8 months' + interval '2 hours', now() - interval '8 months', '{}', '12 Oak Ave', now() - interval '9 months', null),
  ('J-1001', '20000000-0000-4000-8000-0000000000a2', 'C-2001', 'Leak repair', 'Plumbing', 'repair', 'in-progress',
   now() - interval '2 hours', now() + interval '2 hours', now() - interval '2 hours', '{urgent}', null, now() - interval '3 days', null),
  ('J-1002', '20000000-0000-4000-8000-0000000000a1', 'C-2002', 'Water heater install', 'Plumbing', 'installation', 'completed',
   now() - interval '95 days', now() - interval '95 days' + interval '4 hours', now() - interval '95 days', '{}', '3 Pier St', now() - interval '100 days', null),
  ('J-1003', '20000000-0000-4000-8000-0000000000a3', 'C-2006', 'Drain cleaning', 'Plumbing', 'repair', 'in-progress',
   now() - interval '1 day', null, now() - interval '1 day', '{}', null, now() - interval '2 days', null),
  ('J-1004', '20000000-0000-4000-8000-0000000000b1', 'C-2003', 'Radiator bleed', 'Heating', 'maintenance', 'scheduled',
   now() + interval '20 hours', now() + interval '21 hours', now() + interval '20 hours', '{}', null, now() - interval '5 days', null),
  ('J-1005', '20000000-0000-4000-8000-0000000000b1', 'C-2004', 'Boiler check', 'Heating', 'inspection', 'on-hold',
   null, null, null, '{}', null, now() - interval '20 days', null),
  ('J-1006', '20000000-0000-4000-8000-0000000000c1', 'C-2005', 'Switchboard upgrade', 'Electrical', 'installation', 'in_progress',
   now() - interval '1 day', now() + interval '1 day', now() - interval '1 day', '{}', null, now() - interval '10 days', null),
  ('J-1007', '20000000-0000-4000-8000-0000000000c1', 'C-2005', 'Lighting fault', 'Electrical', 'repair', 'cancelled',
   now() + interval '2 days', null, now() + interval '2 days', '{}', null, now() - interval '4 days', null),
  ('J-1008', '20000000-0000-4000-8000-0000000000a1', 'C-2000', 'Duplicate booking', 'Heating', 'maintenance', 'completed',
   now() - interval '30 days', null, now() - interval '30 days', '{}', null, now() - interval '31 days', now() - interval '29 days'),
  ('J-1009', '20000000-0000-4000-8000-0000000000a1', 'C-2007', 'Gutter check', 'Roofing', 'inspection', 'scheduled',
   now() + interval '3 days', now() + interval '3 days 1 hour', now() + interval '3 days', '{}', null, now() - interval '1 day', null),
  ('J-1010', '20000000-0000-4000-8000-0000000000c1', 'C-2005', 'Safety inspection', 'Electrical', 'inspection', 'scheduled',
   now() + interval '18 hours', now() + interval '19 hours', now() + interval '18 hours', '{}', null, now() - interval '2 days', null)
on conflict do nothing;

insert into public.estimates (id, user_id, job_id, client_id, estimate_number, status, total) values
  ('70000000-0000-4000-8000-000000000001', '20000000-0000-4000-8000-0000000000a1', 'J-1009', 'C-2007', 'EST-1001', 'sent', 380.00),
  ('70000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-0000000000b1', 'J-1005', 'C-2004', 'EST-2001', 'accepted', 1200.00)
on conflict do nothing;

-- invoices: uuid ids, text job/client ids, no organization_id; status and
-- payment_status both in use, balance_due and/or balance, due_date nullable
insert into public.invoices (id, user_id, job_id, client_id, invoice_number, status, payment_status, total, amount_paid,
                             balance_due, balance, issue_date, due_date, paid_at, payment_link, portal_access_token) values
  ('30000000-0000-4000-8000-0000000000a1', '20000000-0000-4000-8000-0000000000a1', 'J-1000', 'C-2000', 'INV-1001', 'sent', 'unpaid',
   450.00, 0, 450.00, 450.00, current_date - 35, current_date - 5, null, 'https://pay.example.test/inv/1001', 'tok-a1'),
  ('30000000-0000-4000-8000-0000000000a2', '20000000-0000-4000-8000-0000000000a2', 'J-1001', 'C-2001', 'INV-1002', 'overdue', null,
   120.00, 0, 120.00, null, current_date - 70, current_date - 40, null, null, 'tok-a2'),
  ('30000000-0000-4000-8000-0000000000a3', '20000000-0000-4000-8000-0000000000a1', 'J-1002', 'C-2002', 'INV-1003', 'paid', 'paid',
   2300.00, 2300.00, 0, 0, current_date - 95, current_date - 60, now() - interval '61 days', null, 'tok-a3'),
  ('30000000-0000-4000-8000-0000000000a4', '20000000-0000-4000-8000-0000000000a3', null, 'C-2006', 'INV-1004', 'draft', null,
   90.00, 0, null, null, null, null, null, null, null),
  ('30000000-0000-4000-8000-0000000000a5', '20000000-0000-4000-8000-0000000000a1', null, 'C-2000', 'INV-1005', 'partial', 'partial',
   800.00, 300.00, 500.00, 500.00, current_date - 32, current_date - 2, null, 'https://pay.example.test/inv/1005', 'tok-a5'),
  ('30000000-0000-4000-8000-0000000000b1', '20000000-0000-4000-8000-0000000000b1', 'J-1005', 'C-2003', 'INV-2001', 'unpaid', 'unpaid',
   95.50, 0, 95.50, null, current_date - 40, current_date - 10, null, null, 'tok-b1'),
  ('30000000-0000-4000-8000-0000000000b2', '20000000-0000-4000-8000-0000000000b1', null, 'C-2004', 'INV-2002', 'viewed', null,
   60.00, 0, 60.00, 60.00, current_date - 7, current_date + 7, null, null, 'tok-b2'),
  ('30000000-0000-4000-8000-0000000000c1', '20000000-0000-4000-8000-0000000000c1', 'J-1006', 'C-2005', 'INV-3001', 'sent', 'unpaid',
   1500.00, 0, 1500.00, 1500.00, current_date - 15, current_date - 1, null, 'https://pay.example.test/inv/3001', 'tok-c1'),
  ('30000000-0000-4000-8000-0000000000c2', '20000000-0000-4000-8000-0000000000c1', 'J-1007', 'C-2005', 'INV-3002', 'cancelled', null,
   200.00, 0, 200.00, 200.00, current_date - 50, current_date - 20, null, null, 'tok-c2')
on conflict do nothing;

-- workflows, as the builder (and older versions of it) saved them
insert into public.automation_workflows (id, user_id, organization_id, name, description, status, is_active, enabled,
  trigger_type, trigger_config, trigger_conditions, steps, template_config, nodes, edges, action_type, action_config,
  category, workflow_type, execution_count, success_count, last_triggered_at, last_executed_at, created_at, created_by) values
  -- A: builder invoice reminder ({daysOverdue} inside the builder's config)
  ('40000000-0000-4000-8000-000000000001', '20000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a',
   'Overdue invoice reminder', 'Email clients 3 days after the due date', 'active', true, true,
   'invoice_overdue', '{"triggerType":"invoice_overdue","daysOverdue":3,"conditions":[]}', '{}',
   '[{"id":"step-1700000000000-ab12cd","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Invoice {{invoice.number}} is overdue","message":"Dear {{client.firstName}}, invoice {{invoice.number}} for {{invoice.total}} is overdue. {{company.name}}","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'payments', 'visual', 14, 12, now() - interval '2 hours', now() - interval '10 days', now() - interval '300 days', '20000000-0000-4000-8000-0000000000a1'),
  -- A: maintenance, months in trigger_conditions, delay only in template_config.steps
  ('40000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a',
   'Maintenance reminder', null, 'active', true, true,
   'maintenance_due', '{"triggerType":"maintenance_due","conditions":[]}', '{"months_after_last_service":6}',
   '[{"id":"step-1700000000001-ef34gh","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Time for your service, {{client.firstName}}","message":"Hi {{client.name}}, it has been a while since your last service with {{company.name}}.","sendTime":"immediately"}},{"id":"step-1700000000002-ij56kl","type":"action","name":"Send SMS","config":{"actionType":"sms","message":"{{company.name}}: book your next service, {{client.firstName}}"}}]',
   '{"steps":[{"type":"action","config":{"actionType":"email"}},{"type":"delay","config":{"delayType":"hours","delayValue":24}},{"type":"action","config":{"actionType":"sms"}}]}',
   '[]', '[]', null, '{}', 'maintenance', 'visual', 6, 5, now() - interval '1 hour', now() - interval '1 hour', now() - interval '280 days', '20000000-0000-4000-8000-0000000000a1'),
  -- A: job completed, visual-builder nodes and edges
  ('40000000-0000-4000-8000-000000000003', '20000000-0000-4000-8000-0000000000a3', '10000000-0000-4000-8000-00000000000a',
   'Job completed thank-you', 'Thank the client after the job', 'active', true, true,
   'job_completed', '{"triggerType":"job_completed","conditions":[]}', '{}',
   '[{"id":"step-1700000000003-mn78op","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Job Completed - {{job.title}}","message":"Dear {{client.firstName}}, thank you for choosing {{company.name}}.","sendTime":"immediately"}}]',
   '{}', '[{"id":"trigger-1","type":"trigger","data":{"triggerType":"job_completed"},"position":{"x":100,"y":100}},{"id":"action-1","type":"action","data":{"actionType":"email"},"position":{"x":100,"y":250}}]',
   '[{"id":"e1","source":"trigger-1","target":"action-1"}]', null, '{}', 'follow-up', 'visual', 9, 9, now() - interval '30 days', now() - interval '30 days', now() - interval '200 days', '20000000-0000-4000-8000-0000000000a3'),
  -- A: job status changed (an event trigger type), builder condition
  ('40000000-0000-4000-8000-000000000004', '20000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a',
   'On-hold notice', null, 'active', true, true,
   'job_status_changed', '{"triggerType":"job_status_changed","conditions":[{"field":"status","operator":"equals","value":"on-hold"}]}', '{}',
   '[{"id":"step-1700000000004-qr90st","type":"action","name":"Send SMS","config":{"actionType":"sms","message":"Hi {{client.firstName}}, your job {{job.title}} is on hold."}}]',
   '{}', '[]', '[]', null, '{}', 'jobs', 'visual', 2, 2, now() - interval '60 days', now() - interval '60 days', now() - interval '120 days', '20000000-0000-4000-8000-0000000000a1'),
  -- B: scheduled, {frequency, hour, minute, day_of_week}
  ('40000000-0000-4000-8000-000000000005', '20000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b',
   'Weekly check-in', null, 'active', true, true,
   'scheduled', '{"frequency":"weekly","hour":9,"minute":0,"day_of_week":1}', '{}',
   '[{"id":"step-1700000000005-uv12wx","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Your week with {{company.name}}","message":"Hello {{client.firstName}}","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'marketing', 'visual', 20, 19, now() - interval '6 days', now() - interval '6 days', now() - interval '180 days', '20000000-0000-4000-8000-0000000000b1'),
  -- B: older rows' steps {step_type, config:{subject, body|message, duration}}, {days_overdue}, flat variables
  ('40000000-0000-4000-8000-000000000006', '20000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b',
   'Overdue invoice (legacy)', null, 'active', true, true,
   'invoice_overdue', '{"days_overdue":7}', null,
   '[{"step_type":"send_email","config":{"subject":"Invoice {{invoice_number}} overdue","body":"Dear {{client_name}}, please pay invoice {{invoice_number}}."}},{"step_type":"delay","config":{"duration":"3 days"}},{"step_type":"send_sms","config":{"message":"{{client_name}}, invoice {{invoice_number}} is overdue."}}]',
   null, null, null, null, null, 'payments', 'standard', 31, 25, now() - interval '3 days', now() - interval '3 days', now() - interval '500 days', null),
  -- C: schedule_time, daily
  ('40000000-0000-4000-8000-000000000007', '20000000-0000-4000-8000-0000000000c1', '10000000-0000-4000-8000-00000000000c',
   'Morning digest', null, 'active', true, true,
   'schedule_time', '{"frequency":"daily","hour":8,"minute":30}', '{}',
   '[{"id":"step-1700000000007-yz34ab","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Today at {{company.name}}","message":"Good morning {{client.firstName}}","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'marketing', 'visual', 40, 38, now() - interval '1 day', now() - interval '1 day', now() - interval '90 days', '20000000-0000-4000-8000-0000000000c1'),
  -- C: appointment reminder as job_scheduled {hours_before}
  ('40000000-0000-4000-8000-000000000008', '20000000-0000-4000-8000-0000000000c1', '10000000-0000-4000-8000-00000000000c',
   'Appointment reminder', null, 'active', true, true,
   'job_scheduled', '{"triggerType":"job_scheduled","hours_before":24,"conditions":[]}', '{}',
   '[{"id":"step-1700000000008-cd56ef","type":"action","name":"Send SMS","config":{"actionType":"sms","message":"Reminder: {{job.title}} tomorrow. {{company.name}}"}}]',
   '{}', '[]', '[]', null, '{}', 'reminders', 'visual', 3, 2, now() - interval '3 days', now() - interval '3 days', now() - interval '60 days', '20000000-0000-4000-8000-0000000000c1'),
  -- A: an unfinished draft: no trigger, no config, no steps
  ('40000000-0000-4000-8000-000000000009', '20000000-0000-4000-8000-0000000000a2', '10000000-0000-4000-8000-00000000000a',
   'Untitled workflow', null, 'draft', false, true,
   null, null, null, null, null, null, null, null, null, null, null, 0, 0, null, null, now() - interval '10 days', '20000000-0000-4000-8000-0000000000a2'),
  -- B: paused and disabled
  ('40000000-0000-4000-8000-00000000000a', '20000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b',
   'Yearly maintenance', null, 'paused', false, false,
   'maintenance_due', '{}', '{"months_after_last_service":12}',
   '[{"id":"step-1700000000010-gh78ij","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Yearly service","message":"Dear {{client.name}}","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'maintenance', 'visual', 4, 4, now() - interval '200 days', now() - interval '200 days', now() - interval '400 days', '20000000-0000-4000-8000-0000000000b1'),
  -- C: flags that disagree (status inactive, is_active true); daysOverdue as a string
  ('40000000-0000-4000-8000-00000000000b', '20000000-0000-4000-8000-0000000000c1', '10000000-0000-4000-8000-00000000000c',
   'Overdue invoices', null, 'inactive', true, true,
   'invoice_overdue', '{"daysOverdue":"5"}', '{}',
   '[{"id":"step-1700000000011-kl90mn","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Overdue: {{invoice.number}}","message":"Dear {{client.firstName}}, {{invoice.total}} is overdue.","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'payments', 'visual', 1, 0, now() - interval '45 days', null, now() - interval '50 days', '20000000-0000-4000-8000-0000000000c1'),
  -- A: the oldest shape: one action in action_type/action_config, no steps
  ('40000000-0000-4000-8000-00000000000c', '20000000-0000-4000-8000-0000000000a1', '10000000-0000-4000-8000-00000000000a',
   'Review request', null, 'active', true, true,
   'job_completed', '{}', '{}', '[]', '{}', '[]', '[]',
   'send_email', '{"subject":"How did we do?","body":"Hi {{client_name}}, please review {{company_name}}."}',
   'follow-up', 'simple', 0, 0, null, null, now() - interval '700 days', '20000000-0000-4000-8000-0000000000a1'),
  -- B: an action dueflow does not have (ai_generate_message)
  ('40000000-0000-4000-8000-00000000000d', '20000000-0000-4000-8000-0000000000b1', '10000000-0000-4000-8000-00000000000b',
   'AI follow-up', null, 'active', true, true,
   'job_completed', '{"triggerType":"job_completed","conditions":[]}', '{}',
   '[{"id":"step-1700000000013-op12qr","type":"action","name":"AI Message","config":{"actionType":"ai_generate_message","prompt":"Write a thank-you note for {{job.title}}","channel":"email"}}]',
   '{}', '[]', '[]', null, '{}', 'follow-up', 'visual', 5, 5, now() - interval '5 days', now() - interval '5 days', now() - interval '30 days', '20000000-0000-4000-8000-0000000000b1'),
  -- C: seasonal maintenance (seasonal-maintenance-reminders)
  ('40000000-0000-4000-8000-00000000000e', '20000000-0000-4000-8000-0000000000c1', '10000000-0000-4000-8000-00000000000c',
   'Seasonal safety check', null, 'active', true, true,
   'maintenance_due', '{"seasonal":true}', '{}',
   '[{"id":"step-1700000000014-st34uv","type":"action","name":"Send Message","config":{"actionType":"email","subject":"Seasonal safety check","message":"Hi {{client.firstName}}, book your seasonal check with {{company.name}}.","sendTime":"immediately"}}]',
   '{}', '[]', '[]', null, '{}', 'maintenance', 'visual', 0, 0, null, null, now() - interval '20 days', '20000000-0000-4000-8000-0000000000c1')
on conflict do nothing;

-- execution history: every status, both trigger_data shapes, months-old
-- pending rows, rows without organisation or workflow
insert into public.automation_execution_logs (id, workflow_id, automation_id, organization_id, trigger_type, trigger_data,
  status, actions_executed, error_message, details, started_at, completed_at, created_at, paused_at, resume_at,
  execution_time_ms, weather_conditions, location_used, trigger_matched_conditions) values
  -- pending, 120 days old, {trigger_type, invoice_id, client_id, days_overdue}
  ('50000000-0000-4000-8000-000000000001', '40000000-0000-4000-8000-000000000001', null, '10000000-0000-4000-8000-00000000000a',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000a2","client_id":"C-2001","days_overdue":3}',
   'pending', null, null, null, null, null, now() - interval '120 days', null, null, null, null, null, null),
  -- pending, 95 days old, row-trigger shape with a text record id
  ('50000000-0000-4000-8000-000000000002', '40000000-0000-4000-8000-000000000003', null, '10000000-0000-4000-8000-00000000000a',
   'job_completed', '{"trigger_type":"job_completed","table_name":"jobs","operation":"UPDATE","record_id":"J-1002","new_record":{"id":"J-1002","client_id":"C-2002","title":"Water heater install","status":"completed"},"old_record":{"id":"J-1002","status":"in-progress"},"user_id":"20000000-0000-4000-8000-0000000000a1","organization_id":"10000000-0000-4000-8000-00000000000a","workflow_id":"40000000-0000-4000-8000-000000000003"}',
   'pending', null, null, null, null, null, now() - interval '95 days', null, null, null, null, null, null),
  -- pending, 200 days old, from before organization_id was written; automation_id duplicates workflow_id
  ('50000000-0000-4000-8000-000000000003', '40000000-0000-4000-8000-000000000002', '40000000-0000-4000-8000-000000000002', null,
   'maintenance_due', '{"trigger_type":"maintenance_due","client_id":"C-2000","last_service_date":"2025-01-15"}',
   'pending', null, null, null, null, null, now() - interval '200 days', null, null, null, null, null, null),
  -- pending, 10 minutes old (scheduled run)
  ('50000000-0000-4000-8000-000000000004', '40000000-0000-4000-8000-000000000005', null, '10000000-0000-4000-8000-00000000000b',
   'scheduled', '{"trigger_type":"scheduled","frequency":"weekly"}',
   'pending', null, null, null, null, null, now() - interval '10 minutes', null, null, null, null, null, null),
  -- pending, 2 hours old, invoice shape
  ('50000000-0000-4000-8000-000000000005', '40000000-0000-4000-8000-000000000001', null, '10000000-0000-4000-8000-00000000000a',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000a1","client_id":"C-2000","days_overdue":5}',
   'pending', null, null, null, null, null, now() - interval '2 hours', null, null, null, null, null, null),
  -- completed
  ('50000000-0000-4000-8000-000000000006', '40000000-0000-4000-8000-000000000001', null, '10000000-0000-4000-8000-00000000000a',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000a5","client_id":"C-2000","days_overdue":3}',
   'completed', '[{"type":"email","status":"sent"}]', null, null,
   now() - interval '10 days', now() - interval '10 days' + interval '840 milliseconds', now() - interval '10 days', null, null, 840, null, null, null),
  ('50000000-0000-4000-8000-000000000007', '40000000-0000-4000-8000-000000000003', null, '10000000-0000-4000-8000-00000000000a',
   'job_completed', '{"trigger_type":"job_completed","table_name":"jobs","operation":"UPDATE","record_id":"J-1000","new_record":{"id":"J-1000","status":"completed"}}',
   'completed', '[{"type":"email","status":"sent"}]', null, '{"steps_completed":1}',
   now() - interval '30 days', now() - interval '30 days' + interval '2 seconds', now() - interval '30 days', null, null, 2000,
   '{"temperature":71,"condition":"clear"}', 'job_address', '{"status":"completed"}'),
  -- failed
  ('50000000-0000-4000-8000-000000000008', '40000000-0000-4000-8000-000000000006', null, '10000000-0000-4000-8000-00000000000b',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000b1","client_id":"C-2003","days_overdue":7}',
   'failed', '[]', 'Failed to send email: invalid recipient', null,
   now() - interval '3 days', now() - interval '3 days' + interval '1 second', now() - interval '3 days', null, null, 1000, null, null, null),
  ('50000000-0000-4000-8000-00000000000c', '40000000-0000-4000-8000-000000000006', null, '10000000-0000-4000-8000-00000000000b',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000b1","client_id":"C-2003","days_overdue":7}',
   'failed', null, 'Edge function timeout', null,
   now() - interval '150 days', now() - interval '150 days', now() - interval '150 days', null, null, null, null, null, null),
  -- running since 3 days (never finished)
  ('50000000-0000-4000-8000-000000000009', '40000000-0000-4000-8000-000000000008', null, '10000000-0000-4000-8000-00000000000c',
   'job_scheduled', '{"trigger_type":"job_scheduled","job_id":"J-1006","client_id":"C-2005"}',
   'running', null, null, null, now() - interval '3 days', null, now() - interval '3 days', null, null, null, null, null, null),
  -- processing (taken by the edge function, never reported)
  ('50000000-0000-4000-8000-00000000000a', '40000000-0000-4000-8000-000000000005', null, '10000000-0000-4000-8000-00000000000b',
   'scheduled', '{"trigger_type":"scheduled","frequency":"weekly"}',
   'processing', null, null, null, now() - interval '6 hours', null, now() - interval '6 hours', null, null, null, null, null, null),
  -- delayed by a delay step: paused, resumes tomorrow
  ('50000000-0000-4000-8000-00000000000b', '40000000-0000-4000-8000-000000000002', null, '10000000-0000-4000-8000-00000000000a',
   'maintenance_due', '{"trigger_type":"maintenance_due","client_id":"C-2000","last_service_date":"2025-06-01"}',
   'delayed', '[{"type":"email","status":"sent"}]', null, '{"current_step":1}',
   now() - interval '1 hour', null, now() - interval '1 hour', now() - interval '1 hour', now() + interval '23 hours', null, null, null, null),
  -- pending, 60 days old, without workflow_id (only the older automation_id)
  ('50000000-0000-4000-8000-00000000000d', null, '40000000-0000-4000-8000-000000000004', '10000000-0000-4000-8000-00000000000a',
   'job_status_changed', '{"trigger_type":"job_status_changed","table_name":"jobs","operation":"UPDATE","record_id":"J-1001","new_record":{"id":"J-1001","status":"on-hold"}}',
   'pending', null, null, null, null, null, now() - interval '60 days', null, null, null, null, null, null),
  -- completed by an action dueflow does not have
  ('50000000-0000-4000-8000-00000000000e', '40000000-0000-4000-8000-00000000000d', null, '10000000-0000-4000-8000-00000000000b',
   'job_completed', '{"trigger_type":"job_completed","table_name":"jobs","operation":"UPDATE","record_id":"J-1005"}',
   'completed', '[{"type":"ai_generate_message","status":"generated"},{"type":"email","status":"sent"}]', null, null,
   now() - interval '5 days', now() - interval '5 days' + interval '3 seconds', now() - interval '5 days', null, null, 3000, null, null, null),
  -- completed yesterday, failed half an hour ago
  ('50000000-0000-4000-8000-00000000000f', '40000000-0000-4000-8000-000000000007', null, '10000000-0000-4000-8000-00000000000c',
   'schedule_time', '{"trigger_type":"schedule_time","frequency":"daily"}',
   'completed', '[{"type":"email","status":"sent"}]', null, null,
   now() - interval '1 day', now() - interval '1 day' + interval '500 milliseconds', now() - interval '1 day', null, null, 500, null, null, null),
  ('50000000-0000-4000-8000-000000000010', '40000000-0000-4000-8000-000000000007', null, '10000000-0000-4000-8000-00000000000c',
   'schedule_time', '{"trigger_type":"schedule_time","frequency":"daily"}',
   'failed', '[]', 'SMTP connection refused', null,
   now() - interval '30 minutes', now() - interval '30 minutes', now() - interval '30 minutes', null, null, 150, null, null, null),
  -- pending, 45 days old, for a cancelled invoice of a workflow whose flags disagree
  ('50000000-0000-4000-8000-000000000011', '40000000-0000-4000-8000-00000000000b', null, '10000000-0000-4000-8000-00000000000c',
   'invoice_overdue', '{"trigger_type":"invoice_overdue","invoice_id":"30000000-0000-4000-8000-0000000000c2","client_id":"C-2005","days_overdue":"5"}',
   'pending', null, null, null, null, null, now() - interval '45 days', null, null, null, null, null, null)
on conflict do nothing;

insert into public.automation_schedules (id, workflow_id, cron_expression, cron_job_name, is_active, last_run, next_run, metadata) values
  ('60000000-0000-4000-8000-000000000001', '40000000-0000-4000-8000-000000000005', '0 9 * * 1',
   'workflow_40000000-0000-4000-8000-000000000005', true, now() - interval '6 days', now() + interval '1 day', '{"frequency":"weekly"}'),
  ('60000000-0000-4000-8000-000000000002', '40000000-0000-4000-8000-000000000007', '30 8 * * *',
   'workflow_40000000-0000-4000-8000-000000000007', true, now() - interval '1 day', now() + interval '23 hours', '{"frequency":"daily"}'),
  ('60000000-0000-4000-8000-000000000003', '40000000-0000-4000-8000-00000000000a', '0 8 * * *',
   'workflow_40000000-0000-4000-8000-00000000000a', false, now() - interval '200 days', null, '{}')
on conflict do nothing;

insert into public.automation_analytics (id, workflow_id, date, execution_count, success_count, failure_count, success_rate,
                                         avg_execution_time, total_execution_time, revenue_impact) values
  ('80000000-0000-4000-8000-000000000001', '40000000-0000-4000-8000-000000000001', current_date - 10, 3, 3, 0, 100.00, 840.00, 2520.00, 1350.00),
  ('80000000-0000-4000-8000-000000000002', '40000000-0000-4000-8000-000000000001', current_date - 1, 2, 1, 1, 50.00, 900.00, 1800.00, 0),
  ('80000000-0000-4000-8000-000000000003', '40000000-0000-4000-8000-000000000003', current_date - 30, 1, 1, 0, 100.00, 2000.00, 2000.00, null),
  ('80000000-0000-4000-8000-000000000004', '40000000-0000-4000-8000-000000000005', current_date - 6, 1, 1, 0, 100.00, 650.00, 650.00, null),
  ('80000000-0000-4000-8000-000000000005', '40000000-0000-4000-8000-000000000006', current_date - 3, 4, 2, 2, 50.00, 1000.00, 4000.00, 95.50),
  ('80000000-0000-4000-8000-000000000006', '40000000-0000-4000-8000-000000000007', current_date - 1, 1, 1, 0, 100.00, 500.00, 500.00, null)
on conflict do nothing;

-- The app moves J-1003 from in-progress to completed: the row trigger logs a
-- pending job_completed row for "Job completed thank-you" (once: the update
-- matches only while the job is in progress).
update public.jobs set status = 'completed', schedule_end = now() - interval '1 hour'
where id = 'J-1003' and status = 'in-progress';

-- the counters continue after the seeded ids
update public.id_counters k
set current_value = greatest(k.current_value, coalesce((
  select max(substr(x.id, 3)::int) from (
    select id from public.clients where k.entity_type = 'client'
    union all
    select id from public.jobs where k.entity_type = 'job') x
  where x.id ~ '^[A-Z]-[0-9]+$'), 0));
