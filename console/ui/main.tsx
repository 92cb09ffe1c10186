/**
 * The console page: a header with the cloud and the product shown, navigation, and one view per
 * hash route (#/, #/updates, #/updates/VERSION, #/publish, #/tokens).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiSession } from '../api-types.ts';
import { session } from './api/fleet.ts';
import { ErrorLine } from './components.tsx';
import { useHashRoute } from './hooks.ts';
import { Overview } from './views/overview.tsx';
import { Publish } from './views/publish.tsx';
import { Tokens } from './views/tokens.tsx';
import { UpdateDetail } from './views/update-detail.tsx';
import { Updates } from './views/updates.tsx';

const SECTIONS = [
  { href: '#/', name: 'Overview' },
  { href: '#/updates', name: 'Updates' },
  { href: '#/publish', name: 'Publish' },
  { href: '#/tokens', name: 'Tokens' },
] as const;

function View({ route, product }: { route: string; product: string }) {
  const detail = /^\/updates\/(.+)$/.exec(route);
  if (detail?.[1]) return <UpdateDetail product={product} version={decodeURIComponent(detail[1])} />;
  if (route === '/updates') return <Updates product={product} />;
  if (route === '/publish') return <Publish product={product} />;
  if (route === '/tokens') return <Tokens product={product} />;
  return <Overview product={product} />;
}

function App() {
  const route = useHashRoute();
  const [info, setInfo] = useState<ApiSession | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [product, setProduct] = useState('');
  useEffect(() => {
    session().then(
      (s) => {
        setInfo(s);
        setProduct(s.defaultProduct);
      },
      (err: Error) => setError(err.message),
    );
  }, []);
  const section = `#${route.startsWith('/updates') ? '/updates' : route}`;
  const first = useRef(true);
  useEffect(() => {
    // A screen reader follows the move to the new view; the first load keeps the browser's focus.
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = document.querySelector<HTMLElement>('main h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }, [route]);
  return (
    <>
      <header>
        <h1>Updraft console</h1>
        {info && <span class="cloud">Cloud: {info.cloud}</span>}
        <form class="product" aria-label="Product shown" onSubmit={(e) => e.preventDefault()}>
          <label>
            Showing product
            <input
              value={product}
              onChange={(e) => setProduct(e.currentTarget.value.trim())}
              spellcheck={false}
            />
          </label>
        </form>
      </header>
      <nav aria-label="Sections">
        {SECTIONS.map(({ href, name }) => (
          <a key={href} href={href} aria-current={section === href ? 'page' : undefined}>
            {name}
          </a>
        ))}
      </nav>
      <main>
        <ErrorLine message={error} />
        {product && <View route={route} product={product} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
