-- issue 14 (the house): automation_register_endpoint (from
-- 20261129009000_registration.sql) under 80 lines, the action list read from
-- automation_actions (20261203000100), the URL and secret checks named. Same
-- checks in the same order, same messages and SQLSTATE (22023).

create or replace function public.automation_endpoint_url(p_url text) returns text
language plpgsql immutable set search_path = public, pg_temp as $$
declare
  v_parts text[];
  v_scheme text;
  v_host text;
  v_port integer;
begin
  -- scheme://host[:port][/path][?query]; host a name, an IPv4 address or a
  -- bracketed IPv6 address; no user info, no fragment, no whitespace.
  v_parts := regexp_match(coalesce(p_url, ''),
    '^([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^\s#]*)?$');
  if v_parts is null then
    raise exception 'malformed URL "%": expected https://<host>[:port][/path]', coalesce(p_url, '')
      using errcode = '22023';
  end if;
  v_scheme := lower(v_parts[1]);
  v_host := lower(v_parts[2]);
  if v_parts[3] is not null then
    v_port := substr(v_parts[3], 2)::integer;
    if v_port < 1 or v_port > 65535 then
      raise exception 'malformed URL "%": port % out of range', p_url, v_port using errcode = '22023';
    end if;
  end if;
  if v_host ~ '^\.|\.\.|\.$' then
    raise exception 'malformed URL "%": bad host name "%"', p_url, v_host using errcode = '22023';
  end if;
  if v_scheme = 'http' then
    if not (v_host in ('localhost', '127.0.0.1', '[::1]', 'host.docker.internal')) then
      raise exception 'refusing http:// URL for non-local host "%": use https:// (http is allowed only for localhost, 127.0.0.1, [::1] and host.docker.internal)', v_host
        using errcode = '22023';
    end if;
  elsif v_scheme <> 'https' then
    raise exception 'malformed URL "%": scheme must be https (or http for a local host)', p_url
      using errcode = '22023';
  end if;
  return v_scheme || substr(p_url, length(v_parts[1]) + 1);
end
$$;
comment on function public.automation_endpoint_url(text) is
  'A function URL as automation_register_endpoint stores it (scheme lower-cased), or an exception (22023): malformed (scheme://host[:port][/path][?query], no user info, fragment or whitespace; port 1-65535; no empty host label), http:// for a host other than localhost, 127.0.0.1, [::1] or host.docker.internal, a scheme other than https.';

create or replace function public.automation_validate_webhook_secret(p_secret text) returns void
language plpgsql immutable set search_path = public, pg_temp as $$
declare
  v_key bytea;
begin
  -- never echo the secret in a message
  if p_secret !~ '^whsec_[A-Za-z0-9+/]+={0,2}$' then
    raise exception 'signing secret is not of the form whsec_<base64>' using errcode = '22023';
  end if;
  begin
    v_key := decode(substr(p_secret, 7), 'base64');
  exception when others then
    raise exception 'signing secret is not of the form whsec_<base64>: the key does not decode' using errcode = '22023';
  end;
  if length(v_key) < 24 or length(v_key) > 64 then
    raise exception 'signing secret key is % bytes: Standard Webhooks keys are 24 to 64 bytes (e.g. whsec_ + base64 of 32 random bytes)', length(v_key)
      using errcode = '22023';
  end if;
end
$$;
comment on function public.automation_validate_webhook_secret(text) is
  'Raises (22023, the secret never in the message) unless p_secret is a Standard Webhooks signing secret whsec_<base64> whose key is 24 to 64 bytes.';

create or replace function public.automation_register_endpoint(
  p_action text,
  p_url text,
  p_secret text default null,
  p_batch_size integer default null,
  p_timeout_ms integer default null)
returns public.automation_endpoints
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
  v_url text;
  v_secret_id uuid;
  v_row public.automation_endpoints;
begin
  if p_action is null or not exists (select 1 from public.automation_actions a where a.action = p_action) then
    raise exception 'unknown action "%": expected one of %', coalesce(p_action, ''),
      (select string_agg(a.action, ', ' order by a.position, a.action) from public.automation_actions a)
      using errcode = '22023';
  end if;
  v_url := public.automation_endpoint_url(p_url);
  if p_batch_size is not null and (p_batch_size < 1 or p_batch_size > 500) then
    raise exception 'batch size % out of range: expected 1 to 500 (the functions refuse more than DUEFLOW_MAX_IDS, 500 by default)', p_batch_size
      using errcode = '22023';
  end if;
  if p_timeout_ms is not null and (p_timeout_ms < 1000 or p_timeout_ms > 900000) then
    raise exception 'timeout % ms out of range: expected 1000 to 900000, and at least the function timeout (60000)', p_timeout_ms
      using errcode = '22023';
  end if;
  if p_secret is not null then
    perform public.automation_validate_webhook_secret(p_secret);
  end if;

  insert into public.automation_endpoints as e (action, url)
  values (p_action, v_url)
  on conflict (action) do update
    set url = excluded.url, enabled = true, updated_at = now();

  update public.automation_endpoints e
  set batch_size = coalesce(p_batch_size, e.batch_size),
      timeout_ms = coalesce(p_timeout_ms, e.timeout_ms),
      updated_at = now()
  where e.action = p_action
  returning e.* into v_row;

  if v_row.timeout_ms < 60000 then
    raise warning 'automation_endpoints.timeout_ms for % is % ms, below the functions'' 60 s timeout (template.yaml): pg_net will record timeouts for calls that are still working',
      p_action, v_row.timeout_ms;
  end if;

  if p_secret is not null then
    -- vault.decrypted_secrets: what the postgres role may read on Supabase
    -- (and what the dispatcher reads the key from).
    select s.id into v_secret_id from vault.decrypted_secrets s where s.name = v_row.secret_name
    order by s.created_at desc limit 1;
    if v_secret_id is null then
      perform vault.create_secret(p_secret, v_row.secret_name, 'dueflow: Standard Webhooks signing secret (whsec_...), same value as DUEFLOW_WEBHOOK_SECRET of the functions');
    else
      perform vault.update_secret(v_secret_id, p_secret);
    end if;
  end if;

  return v_row;
end
$$;
comment on function public.automation_register_endpoint(text, text, text, integer, integer) is
  'Registers the deployed function of an action: upserts automation_endpoints (url; batch_size and timeout_ms when given, '
  'else kept or defaulted; enabled) and, when p_secret is given, stores the whsec_<base64> signing secret in Vault under '
  'the endpoint''s secret_name (dueflow_webhook_secret). Refuses an action not in automation_actions, a malformed URL, http:// for a host other '
  'than localhost, 127.0.0.1, [::1] or host.docker.internal (automation_endpoint_url), and a malformed secret (automation_validate_webhook_secret). Service role only.';

revoke all on function public.automation_endpoint_url(text),
  public.automation_validate_webhook_secret(text),
  public.automation_register_endpoint(text, text, text, integer, integer)
  from public, anon, authenticated;
grant execute on function public.automation_register_endpoint(text, text, text, integer, integer) to service_role;
