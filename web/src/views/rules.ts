/**
 * Scheduled profiling rules: `#/rules` lists them (with Edit, Enable/Disable and Delete), `#/rules/new` and
 * `#/rules/{id}` show the form that creates or replaces one; a rule's page also shows its last and next firing,
 * the targets the last firing skipped and the runs its firings created, refreshed every 3 s.
 */
import { api, errorsByField, type ProfilingInfo, type Rule, type RuleBody, type ServiceConfig } from '../api.ts';
import { messagesOf, nextRefreshHint, runFields, showMessages, whileBusy } from '../components.ts';
import { h, setChildren, setText } from '../dom.ts';
import { formatSeconds, formatTime, roleName } from '../format.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
import { html, RUN_COLUMNS, type RunColumn, render, repeat, runsTable } from '../templates.ts';
import { firingsPanel } from './firings.ts';
import type { View } from './view.ts';

/** How many of a rule's runs its page shows (the API's largest page). */
const RULE_RUNS = 100;

/** A rule's runs: when, on which node (linking to its profiler page), and how each went. */
const RULE_RUN_COLUMNS: readonly RunColumn[] = [
  RUN_COLUMNS.triggerTime,
  RUN_COLUMNS.node,
  RUN_COLUMNS.duration,
  RUN_COLUMNS.mode,
  RUN_COLUMNS.status,
  RUN_COLUMNS.finishedTime,
  RUN_COLUMNS.message,
  RUN_COLUMNS.links,
];

/** The form's own fields, in the order they appear; `runFields` has duration and mode. The specific ones first. */
const FIELDS = [
  'name',
  'cluster',
  'target.role',
  'target.nodes',
  'target.sample',
  'target',
  'schedule',
  'timezone',
  'enabled',
  'team',
] as const;
type Field = (typeof FIELDS)[number];

const SCHEDULE_HINT =
  'rate(1 minute), rate(N minutes|hours|days); cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *) at 03:00 every day; at(2026-12-24T18:00:00) once. Read in the time zone below.';

function describeTarget(target: Rule['target']): string {
  const role = roleName(target.role);
  if (target.nodes) {
    const listed = `${role}${target.nodes.length === 1 ? '' : 's'} ${target.nodes.join(', ')}`;
    return target.sample === undefined ? listed : `${target.sample} at random of ${listed}`;
  }
  return target.sample === undefined
    ? `every ${role}`
    : `${target.sample} ${role}${target.sample === 1 ? '' : 's'} at random`;
}

function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** The rules list. */
export async function rulesView(root: HTMLElement): Promise<View> {
  document.title = 'Rules · Flink Fleet Profiler';
  const loadError = h('p', { class: 'action-error', role: 'alert', hidden: true });
  const actionError = h('p', { id: 'rules-error', class: 'action-error', role: 'alert', hidden: true });
  const list = h('div');
  setChildren(
    root,
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: href.fleet() }, 'Fleet'),
      ' / ',
      h('span', { 'aria-current': 'page' }, 'Rules'),
    ),
    h('h1', { tabindex: -1 }, 'Scheduled profiling rules'),
    h(
      'p',
      { class: 'hint' },
      'A rule profiles its targets on a schedule, without anyone clicking; a busy target is skipped, never failed.',
    ),
    h('p', null, h('a', { href: href.newRule(), class: 'button-link', id: 'new-rule' }, 'New rule')),
    loadError,
    actionError,
    list,
  );

  let rules: Rule[] = [];

  const toggle = async (button: HTMLButtonElement, rule: Rule) => {
    showMessages(actionError, []);
    try {
      await whileBusy(button, () => api.updateRule(rule.id, { ...rule, enabled: !rule.enabled }));
    } catch (error) {
      showMessages(
        actionError,
        messagesOf(error).map((m) => `${rule.name}: ${m}`),
      );
    } finally {
      button.disabled = false;
    }
    poller.refreshNow();
  };

  const remove = async (button: HTMLButtonElement, rule: Rule) => {
    if (!window.confirm(`Delete the rule "${rule.name}" and its schedule? Its runs stay.`)) return;
    showMessages(actionError, []);
    try {
      await whileBusy(button, () => api.deleteRule(rule.id));
      rules = rules.filter((r) => r.id !== rule.id);
      draw();
      root.querySelector<HTMLElement>('h1')?.focus();
    } catch (error) {
      showMessages(
        actionError,
        messagesOf(error).map((m) => `${rule.name}: ${m}`),
      );
    } finally {
      button.disabled = false;
    }
    poller.refreshNow();
  };

  const draw = () => {
    const row = (rule: Rule) => html`<tr data-rule-id=${rule.id} data-enabled=${String(rule.enabled)}>
      <td><a href=${href.rule(rule.id)}>${rule.name}</a></td>
      <td><a href=${href.cluster(rule.cluster)}>${rule.cluster}</a></td>
      <td class="target">${describeTarget(rule.target)}</td>
      <td>${rule.mode}</td>
      <td>${formatSeconds(rule.duration)}</td>
      <td class="schedule"><code>${rule.schedule}</code><span class="zone">${rule.timezone}</span></td>
      <td><span class=${rule.enabled ? 'ok' : 'none'}>${rule.enabled ? 'yes' : 'no'}</span></td>
      <td class="time last-fired">${formatTime(rule.lastFiredAt)}</td>
      <td class="time next-fire">${formatTime(rule.nextFireAt)}</td>
      <td class="row-actions">
        <a href=${href.rule(rule.id)} aria-label=${`Edit ${rule.name}`}>Edit</a>
        <button type="button" class="secondary" data-action="toggle"
          aria-label=${`${rule.enabled ? 'Disable' : 'Enable'} ${rule.name}`}
          @click=${(event: Event) => void toggle(event.currentTarget as HTMLButtonElement, rule)}>
          ${rule.enabled ? 'Disable' : 'Enable'}
        </button>
        <button type="button" class="secondary danger" data-action="delete" aria-label=${`Delete ${rule.name}`}
          @click=${(event: Event) => void remove(event.currentTarget as HTMLButtonElement, rule)}>Delete</button>
      </td>
    </tr>`;
    render(
      html`<div class="table-wrap">
          <table class="rules" id="rules">
            <thead>
              <tr>
                ${[
                  'Name',
                  'Cluster',
                  'Target',
                  'Mode',
                  'Duration',
                  'Schedule',
                  'Enabled',
                  'Last fired',
                  'Next fire',
                  'Actions',
                ].map((title) => html`<th scope="col">${title}</th>`)}
              </tr>
            </thead>
            <tbody>${repeat(rules, (rule) => rule.id, row)}</tbody>
          </table>
        </div>
        <p class="empty" ?hidden=${rules.length > 0}>No rule yet. Create one to profile on a schedule.</p>`,
      list,
    );
  };

  const refresh = async (): Promise<undefined> => {
    try {
      rules = (await api.rules()).rules;
      showMessages(loadError, []);
    } catch (error) {
      showMessages(loadError, messagesOf(error));
    }
    draw();
    return undefined;
  };

  const poller = startPolling(refresh);
  return { ready: poller.ready, dispose: () => poller.stop() };
}

interface FormField {
  element: HTMLElement;
  error: HTMLElement;
  input: HTMLElement;
}

/** A labelled field with an optional hint and an error slot that the API's message about it goes into. */
function field(id: string, label: string, input: HTMLElement, hint?: string, wide = false): FormField {
  const error = h('p', { id: `${id}-error`, class: 'field-error', hidden: true });
  input.id = id;
  input.setAttribute('aria-describedby', [hint ? `${id}-hint` : '', `${id}-error`].filter(Boolean).join(' '));
  const element = h(
    'div',
    { class: wide ? 'field wide' : 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { id: `${id}-hint`, class: 'hint' }, hint) : null,
    error,
  );
  return { element, error, input };
}

/** A new rule (`id` undefined) or one rule: the form, and for a rule its firings and runs. */
export async function ruleView(root: HTMLElement, id: string | undefined): Promise<View> {
  const [config, clusters, loaded] = await Promise.all([
    api.config(),
    api.clusters(),
    id === undefined ? Promise.resolve(undefined) : api.rule(id),
  ]);
  let rule: Rule | undefined = loaded;
  const title = rule ? `Rule ${rule.name}` : 'New rule';
  document.title = `${title} · Flink Fleet Profiler`;

  const form = ruleForm(
    config,
    clusters.clusters.map((c) => c.id),
    rule,
  );
  const heading = h('h1', { tabindex: -1 }, title);
  const crumbs = h(
    'nav',
    { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: href.fleet() }, 'Fleet'),
    ' / ',
    h('a', { href: href.rules() }, 'Rules'),
    ' / ',
    h('span', { 'aria-current': 'page' }, rule ? rule.name : 'New'),
  );

  if (!rule) {
    form.onSaved((created) => {
      location.hash = href.rule(created.id);
    });
    setChildren(root, crumbs, heading, h('section', { 'aria-label': 'The rule' }, form.element));
    return { ready: Promise.resolve(), dispose() {} };
  }
  const ruleId = rule.id;

  const facts = h('dl', { class: 'facts', id: 'rule-facts' });
  const firing = h('div', { id: 'last-firing' });
  const loadError = h('p', { class: 'action-error', role: 'alert', hidden: true });
  const runsBox = h('div');
  const firings = firingsPanel();
  setChildren(
    root,
    crumbs,
    heading,
    loadError,
    h('section', { 'aria-labelledby': 'firing-heading' }, h('h2', { id: 'firing-heading' }, 'Firings'), facts, firing),
    h(
      'section',
      { 'aria-labelledby': 'changes-heading' },
      h(
        'h2',
        { id: 'changes-heading' },
        'What changed between firings',
        h('span', { class: 'subtitle' }, ' · newest first'),
      ),
      h(
        'p',
        { class: 'hint' },
        "Each firing's hottest methods (its runs merged) and the methods whose share of the samples changed most since the firing before.",
      ),
      firings.element,
    ),
    h(
      'section',
      { 'aria-labelledby': 'rule-runs-heading' },
      h(
        'h2',
        { id: 'rule-runs-heading' },
        'Runs of this rule',
        h('span', { class: 'subtitle' }, ` · newest first, the last ${RULE_RUNS}`),
      ),
      runsBox,
    ),
    h('section', { 'aria-labelledby': 'edit-heading' }, h('h2', { id: 'edit-heading' }, 'Edit the rule'), form.element),
  );

  let runs: ProfilingInfo[] = [];
  form.onSaved((saved) => {
    rule = saved;
    setText(heading, `Rule ${saved.name}`);
    document.title = `Rule ${saved.name} · Flink Fleet Profiler`;
    renderRule();
    poller.refreshNow();
  });

  const renderRule = () => {
    if (!rule) return;
    const last = rule.lastFiring;
    setChildren(
      facts,
      h('dt', null, 'Schedule'),
      h('dd', null, h('code', null, rule.schedule), ` in ${rule.timezone}${rule.enabled ? '' : ' (disabled)'}`),
      h('dt', null, 'Last fired'),
      h('dd', { id: 'rule-last-fired' }, formatTime(rule.lastFiredAt)),
      h('dt', null, 'Next fire'),
      h(
        'dd',
        { id: 'rule-next-fire' },
        rule.nextFireAt === null
          ? rule.enabled
            ? 'never again'
            : 'never: the rule is disabled'
          : formatTime(rule.nextFireAt),
      ),
      ...(rule.team === null ? [] : [h('dt', null, 'Team'), h('dd', { id: 'rule-team' }, rule.team)]),
      ...(rule.createdBy === null
        ? []
        : [
            h('dt', null, 'Written by'),
            h(
              'dd',
              { id: 'rule-authors' },
              rule.updatedBy && rule.updatedBy !== rule.createdBy
                ? `${rule.createdBy}, last changed by ${rule.updatedBy}`
                : rule.createdBy,
            ),
          ]),
    );
    if (!last) {
      setChildren(firing, h('p', { class: 'empty' }, 'The rule has not fired yet.'));
      return;
    }
    const more = last.skippedCount - last.skipped.length;
    setChildren(
      firing,
      h(
        'p',
        null,
        `The last firing (due ${formatTime(last.scheduledAt)}, fired ${formatTime(last.at)}) started ${last.runIds.length} run${last.runIds.length === 1 ? '' : 's'} and skipped ${last.skippedCount}.`,
      ),
      last.error ? h('p', { class: 'action-error', role: 'alert' }, `Nothing was started: ${last.error}`) : null,
      last.skipped.length > 0
        ? h(
            'div',
            { class: 'skipped', id: 'rule-skipped' },
            h('p', null, 'Skipped targets:'),
            h(
              'ul',
              null,
              last.skipped.map((s) => h('li', null, h('span', { class: 'mono' }, s.node), ` — ${s.reason}`)),
              more > 0 ? h('li', null, `and ${more} more`) : null,
            ),
          )
        : null,
    );
  };

  const renderRuns = () => {
    render(
      html`${runsTable(runs, RULE_RUN_COLUMNS, { id: 'rule-runs' })}
        <p class="empty" ?hidden=${runs.length > 0}>
          No run yet: the rule has not fired, or its runs have been trimmed.
        </p>`,
      runsBox,
    );
    firings.update(runs);
  };

  const refresh = async (): Promise<number | undefined> => {
    try {
      const [fresh, list] = await Promise.all([api.rule(ruleId), api.runs({ ruleId, limit: String(RULE_RUNS) })]);
      rule = fresh;
      runs = list.runs;
      showMessages(loadError, []);
    } catch (error) {
      showMessages(loadError, messagesOf(error));
    }
    renderRule();
    renderRuns();
    return nextRefreshHint(runs);
  };

  const poller = startPolling(refresh);
  return {
    ready: poller.ready,
    dispose: () => {
      poller.stop();
      firings.dispose();
    },
  };
}

interface RuleForm {
  element: HTMLFormElement;
  onSaved(listener: (rule: Rule) => void): void;
}

/** The form of a rule: creates one (no `rule`) or replaces it, with each API error next to the field it names. */
function ruleForm(config: ServiceConfig, clusters: string[], rule: Rule | undefined): RuleForm {
  let version = rule?.version;
  let saved: (rule: Rule) => void = () => {};

  const name = field('rule-name', 'Name', h('input', { type: 'text', name: 'name', value: rule?.name ?? '' }));
  const cluster = field(
    'rule-cluster',
    'Cluster',
    h(
      'select',
      { name: 'cluster' },
      // A rule's cluster that is not running now is still offered, so the rule can be saved as it is.
      [...new Set([...(rule ? [rule.cluster] : []), ...clusters])].map((c) =>
        h('option', { value: c, selected: c === rule?.cluster }, c),
      ),
    ),
  );
  const role = field(
    'rule-role',
    'Role',
    h(
      'select',
      { name: 'role' },
      (['taskmanager', 'jobmanager'] as const).map((r) =>
        h('option', { value: r, selected: r === (rule?.target.role ?? 'taskmanager') }, roleName(r)),
      ),
    ),
  );
  const nodes = field(
    'rule-nodes',
    'Nodes (optional)',
    h('input', { type: 'text', name: 'nodes', value: rule?.target.nodes?.join(', ') ?? '' }),
    'node ids, comma-separated; empty: every node of the role',
  );
  const sample = field(
    'rule-sample',
    'Sample (optional)',
    h('input', { type: 'number', name: 'sample', min: 1, step: 1, value: rule?.target.sample ?? '' }),
    'profile this many of them, picked at random at each firing',
  );
  const run = runFields('rule', config);
  const durationInput = run.elements[0]?.querySelector('input');
  const modeSelect = run.elements[1]?.querySelector('select');
  if (rule && durationInput) durationInput.value = String(rule.duration);
  if (rule && modeSelect) {
    modeSelect.value = rule.mode;
    modeSelect.dispatchEvent(new Event('change'));
  }
  const schedule = field(
    'rule-schedule',
    'Schedule',
    h('input', {
      type: 'text',
      name: 'schedule',
      value: rule?.schedule ?? 'rate(1 hour)',
      spellcheck: 'false',
      autocomplete: 'off',
    }),
    SCHEDULE_HINT,
    true,
  );
  const timezone = field(
    'rule-timezone',
    'Time zone',
    h('input', {
      type: 'text',
      name: 'timezone',
      value: rule?.timezone ?? browserTimeZone(),
      spellcheck: 'false',
      autocomplete: 'off',
    }),
    'IANA name, e.g. Europe/Berlin or UTC',
  );
  const team = field(
    'rule-team',
    'Team (optional)',
    h('input', { type: 'text', name: 'team', value: rule?.team ?? '', spellcheck: 'false', autocomplete: 'off' }),
    'the team (Cognito group) the rule belongs to; empty: your only team, or none in local mode',
  );
  const enabledInput = h('input', {
    type: 'checkbox',
    id: 'rule-enabled',
    name: 'enabled',
    checked: rule?.enabled ?? true,
  });
  const enabledError = h('p', { id: 'rule-enabled-error', class: 'field-error', hidden: true });
  enabledInput.setAttribute('aria-describedby', enabledError.id);
  const enabled: FormField = {
    element: h(
      'div',
      { class: 'field' },
      h('span', { class: 'check-label' }, enabledInput, h('label', { for: enabledInput.id }, 'Enabled')),
      h('p', { class: 'hint' }, 'a disabled rule keeps its settings and does not fire'),
      enabledError,
    ),
    error: enabledError,
    input: enabledInput,
  };

  const byField: Record<Field, FormField> = {
    name,
    cluster,
    'target.role': role,
    'target.nodes': nodes,
    'target.sample': sample,
    target: role,
    schedule,
    timezone,
    enabled,
    team,
  };

  const button = h(
    'button',
    { type: 'submit', id: 'save-rule', class: 'primary' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    rule ? 'Save rule' : 'Create rule',
  );
  const actionError = h('p', { id: 'rule-error', class: 'action-error', role: 'alert', hidden: true });
  const status = h('p', { id: 'rule-saved', class: 'reason', role: 'status' });
  const element = h(
    'form',
    { class: 'run-form rule-form', novalidate: true, 'aria-label': rule ? `Edit the rule ${rule.name}` : 'New rule' },
    name.element,
    cluster.element,
    role.element,
    nodes.element,
    sample.element,
    ...run.elements,
    schedule.element,
    timezone.element,
    team.element,
    enabled.element,
    h('div', { class: 'actions' }, button, status, actionError),
  );

  const clearErrors = () => {
    run.clearErrors();
    for (const f of Object.values(byField)) {
      f.error.hidden = true;
      f.error.textContent = '';
      f.input.removeAttribute('aria-invalid');
    }
    showMessages(actionError, []);
  };

  const showErrors = (errors: string[]) => {
    clearErrors();
    const rest = errorsByField(run.showErrors(errors), FIELDS);
    for (const f of FIELDS) {
      const messages = rest.get(f);
      if (!messages) continue;
      const { error, input } = byField[f];
      error.textContent = [error.textContent, ...messages].filter(Boolean).join(' ');
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
    }
    showMessages(actionError, rest.get('') ?? []);
    element.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  };

  const read = (): RuleBody => {
    const value = (f: FormField) => (f.input as HTMLInputElement | HTMLSelectElement).value;
    const listed = value(nodes)
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const sampleText = value(sample).trim();
    const target: RuleBody['target'] = { role: value(role) };
    if (listed.length > 0) target.nodes = listed;
    if (sampleText !== '') target.sample = Number(sampleText);
    const body: RuleBody = {
      name: value(name),
      cluster: value(cluster),
      target,
      ...run.read(),
      schedule: value(schedule),
      timezone: value(timezone).trim(),
      enabled: enabledInput.checked,
    };
    const teamText = value(team).trim();
    if (teamText !== '') body.team = teamText;
    if (version !== undefined) body.version = version;
    return body;
  };

  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    clearErrors();
    setText(status, '');
    try {
      const body = read();
      const result = await whileBusy(button, () => (rule ? api.updateRule(rule.id, body) : api.createRule(body)));
      version = result.version;
      setText(status, `Saved at ${formatTime(result.updatedAt)}.`);
      saved(result);
    } catch (error) {
      showErrors(messagesOf(error));
    } finally {
      button.disabled = false;
    }
  });

  return {
    element,
    onSaved: (listener) => {
      saved = listener;
    },
  };
}
