/** The web UI: a view per address (see router.ts), swapped on every hash change, once the tab is signed in. */
import { type Notice, onNotice, startAuth } from './auth.ts';
import { messagesOf, showMessages } from './components.ts';
import { h, setChildren } from './dom.ts';
import { href, parseRoute, type Route } from './router.ts';
import { showSession } from './session-bar.ts';
import { clusterView } from './views/cluster.ts';
import { fleetView } from './views/fleet.ts';
import { groupView } from './views/group.ts';
import { profilerPanel } from './views/profiler-panel.ts';
import { rulesView, ruleView } from './views/rules.ts';
import { runView } from './views/run.ts';
import type { View } from './views/view.ts';

/** Marked once the first view shows its data and takes input: the page's time to interactive. */
export const INTERACTIVE_MARK = 'ffp:interactive';

const main = document.getElementById('main') as HTMLElement;
let current: View | undefined;
let shown = 0;

function mount(route: Route, container: HTMLElement): Promise<View> {
  switch (route.view) {
    case 'fleet':
      return fleetView(container);
    case 'cluster':
      return clusterView(container, route.cluster);
    case 'profiler':
      return profilerPanel(container, route.target);
    case 'rules':
      return rulesView(container);
    case 'rule':
      return ruleView(container, route.id);
    case 'run':
      return runView(container, route.id);
    case 'group':
      return groupView(container, route.id);
    case 'not-found':
      setChildren(
        container,
        h('h1', { tabindex: -1 }, 'No such page'),
        h('p', null, `Nothing lives at ${route.hash}. `, h('a', { href: href.fleet() }, 'Go to the fleet')),
      );
      return Promise.resolve({ ready: Promise.resolve(), dispose() {} });
  }
}

async function show(): Promise<void> {
  current?.dispose();
  current = undefined;
  const token = ++shown;
  const route = parseRoute(location.hash);
  // Each view renders into its own container, so one that loses a race with a newer address renders nowhere.
  const container = h('div', { class: 'view' });
  main.replaceChildren(container);
  main.setAttribute('aria-busy', 'true');
  document.documentElement.dataset.view = route.view;
  try {
    const view = await mount(route, container);
    if (token !== shown) {
      view.dispose();
      return;
    }
    current = view;
    await view.ready;
  } catch (error) {
    const slot = h('p', { class: 'action-error', role: 'alert' });
    setChildren(container, h('h1', { tabindex: -1 }, 'The page could not be loaded'), slot);
    showMessages(slot, messagesOf(error));
  }
  if (token !== shown) return;
  main.removeAttribute('aria-busy');
  if (token === 1) {
    performance.mark(INTERACTIVE_MARK);
    document.documentElement.dataset.ready = 'true';
  } else {
    // A new view: move focus to its heading, as a page load would, so keyboard and screen-reader users start there.
    container.querySelector<HTMLElement>('h1')?.focus();
  }
}

/** Shows why the API cannot be used (not signed in, a token refused, …) in place of the view, and what to do. */
function showNotice(notice: Notice): void {
  current?.dispose();
  current = undefined;
  shown++;
  document.documentElement.dataset.view = 'sign-in';
  main.removeAttribute('aria-busy');
  const heading = h('h1', { tabindex: -1, id: 'sign-in-heading' }, notice.title);
  setChildren(
    main,
    h(
      'section',
      { class: 'view sign-in', id: 'sign-in', 'aria-labelledby': 'sign-in-heading' },
      heading,
      h('p', { role: 'alert' }, notice.text),
      notice.action
        ? h(
            'p',
            null,
            h('button', { type: 'button', class: 'primary', onclick: notice.action.run }, notice.action.label),
          )
        : null,
    ),
  );
  heading.focus();
}

// The skip link moves focus without touching the address (a `#main` hash would be taken for a view).
document.querySelector('[data-skip]')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

async function start(): Promise<void> {
  let notice: Notice | undefined;
  try {
    notice = await startAuth();
  } catch (error) {
    notice = { title: 'The page could not be loaded', text: messagesOf(error).join('; ') };
  }
  onNotice(showNotice);
  window.addEventListener('hashchange', () => void show());
  if (notice) {
    showNotice(notice);
    return;
  }
  void showSession(document.getElementById('session'));
  void show();
}
void start();
