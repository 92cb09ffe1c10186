/**
 * The console page: a header with the cloud and the product shown, navigation, and one view per
 * hash route (#/, #/updates, #/updates/VERSION, #/publish, #/devices, #/devices/ID, #/tokens, #/keys).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ApiSession } from '../api-types.ts';
import { session } from './api/fleet.ts';
import { ErrorLine } from './components.tsx';
import { useHashRoute } from './hooks.ts';
import { DeviceDetail } from './views/device-detail.tsx';
import { Devices } from './views/devices.tsx';
import { Keys } from './views/keys.tsx';
import { Overview } from './views/overview.tsx';
import { Publish } from './views/publish.tsx';
import { Tokens } from './views/tokens.tsx';
import { UpdateDetail } from './views/update-detail.tsx';
import { Updates } from './views/updates.tsx';

const SECTIONS = [
  { href: '#/', name: 'Overview' },
  { href: '#/updates', name: 'Updates' },
  { href: '#/publish', name: 'Publish' },
  { href: '#/devices', name: 'Devices' },
  { href: '#/tokens', name: 'Tokens' },
  { href: '#/keys', name: 'Keys' },
] as const;

function View({ route, cloud, product }: { route: string; cloud: string; product: string }) {
  const detail = /^\/updates\/(.+)$/.exec(route);
  if (detail?.[1])
    return <UpdateDetail cloud={cloud} product={product} version={decodeURIComponent(detail[1])} />;
  if (route === '/updates') return <Updates cloud={cloud} product={product} />;
  const device = /^\/devices\/(.+)$/.exec(route);
  if (device?.[1]) return <DeviceDetail cloud={cloud} product={product} id={decodeURIComponent(device[1])} />;
  if (route === '/devices') return <Devices cloud={cloud} product={product} />;
  if (route === '/publish') return <Publish cloud={cloud} product={product} />;
  if (route === '/tokens') return <Tokens cloud={cloud} product={product} />;
  if (route === '/keys') return <Keys />;
  return <Overview cloud={cloud} product={product} />;
}

/** The cloud shown: a switcher when the console serves several (every view then asks that cloud). */
function CloudSwitcher({
  clouds,
  cloud,
  onChange,
}: {
  clouds: readonly string[];
  cloud: string;
  onChange: (cloud: string) => void;
}) {
  if (clouds.length < 2) return <span class="cloud">Cloud: {cloud}</span>;
  return (
    <label class="cloud">
      Cloud
      <select value={cloud} onChange={(e) => onChange(e.currentTarget.value)}>
        {clouds.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
    </label>
  );
}

function App() {
  const route = useHashRoute();
  const [info, setInfo] = useState<ApiSession | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [product, setProduct] = useState('');
  const [cloud, setCloud] = useState('');
  useEffect(() => {
    session().then(
      (s) => {
        setInfo(s);
        setCloud(s.clouds[0] ?? '');
        setProduct(s.defaultProduct);
      },
      (err: Error) => setError(err.message),
    );
  }, []);
  const section = `#${/^\/(updates|devices)\b/.exec(route)?.[0] ?? route}`;
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
        {info && cloud && <CloudSwitcher clouds={info.clouds} cloud={cloud} onChange={setCloud} />}
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
        {product && cloud && <View route={route} cloud={cloud} product={product} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
