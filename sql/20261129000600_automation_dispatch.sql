-- dueflow dispatch: process_pending_automations() rings the functions through
-- pg_net with Standard Webhooks signatures. pg_net is only a doorbell: the
-- execution row stays pending until a function claims it, and rows not
-- claimed within redispatch_after are rung again.

create or replace function public.automation_webhook_key(p_secret_name text)
returns bytea language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_secret text;
begin
  select s.decrypted_secret into v_secret
  from vault.decrypted_secrets s where s.name = p_secret_name
  order by s.created_at desc limit 1;
  if v_secret is null or v_secret !~ '^whsec_[A-Za-z0-9+/=]+$' then
    return null;
  end if;
  return decode(substr(v_secret, 7), 'base64');
exception when others then
  return null;
end
$$;
comment on function public.automation_webhook_key(text) is
  'The HMAC key of a Vault secret holding whsec_<base64>, or null when missing or malformed.';

create or replace function public.automation_sign_webhook(p_key bytea, p_id text, p_ts bigint, p_body text)
returns text language sql immutable set search_path = public, pg_temp as $$
  select 'v1,' || translate(encode(extensions.hmac(convert_to(p_id || '.' || p_ts || '.' || p_body, 'UTF8'), p_key, 'sha256'), 'base64'), E'\n', '')
$$;
comment on function public.automation_sign_webhook(bytea, text, bigint, text) is
  'Standard Webhooks signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>.';


revoke all on function public.automation_webhook_key(text),
  public.automation_sign_webhook(bytea, text, bigint, text)
  from public, anon, authenticated;
