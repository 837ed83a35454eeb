import { Component, type ReactNode } from 'react';
import { t } from './dashboard-i18n';

/** One per panel: a failing panel shows its error and the rest of the dashboard keeps working. */
export class ErrorBoundary extends Component<
  { name: string; children: ReactNode },
  { error?: Error }
> {
  override state: { error?: Error } = {};

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    if (this.state.error) {
      return (
        <section className="panel" role="alert">
          <h2>{this.props.name}</h2>
          <p className="error">
            {t.panelFailed} {this.state.error.message}
          </p>
          <button type="button" onClick={() => this.setState({ error: undefined })}>
            {t.tryAgain}
          </button>
        </section>
      );
    }
    return this.props.children;
  }
}
