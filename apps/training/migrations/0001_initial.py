"""Training moved out of the backtests app (its own app since the research-core rework).

The tables already exist (created by backtests 0003): the state is created over them, then
the tables, their index and the content types are renamed to the new app. Object permissions
follow, since they point at the content type.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in ("trainingrun", "trainingtrial"):
        if not ContentType.objects.filter(app_label="training", model=model).exists():
            ContentType.objects.filter(app_label="backtests", model=model).update(app_label="training")



class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('backtests', '0005_training_batch'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('marketdata', '0003_candle_block_cache'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='TrainingRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('state', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=16)),
                        ('progress', models.FloatField(default=0.0, help_text='Percent complete, 0–100.')),
                        ('message', models.CharField(blank=True, help_text='What the job is doing now.', max_length=500)),
                        ('error', models.TextField(blank=True, help_text='Human-readable reason for a failure.')),
                        ('cancel_requested', models.BooleanField(default=False)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('name', models.CharField(blank=True, max_length=150)),
                        ('strategy_key', models.CharField(db_index=True, max_length=50)),
                        ('timeframe', models.CharField(max_length=4)),
                        ('start', models.DateTimeField(help_text="First bar's open time (UTC), inclusive.")),
                        ('end', models.DateTimeField(help_text='End of the range (UTC), exclusive.')),
                        ('objective', models.CharField(choices=[('sharpe', 'Sharpe ratio'), ('sortino', 'Sortino ratio'), ('calmar', 'Calmar ratio'), ('profit_factor', 'Profit factor'), ('composite', 'Composite (Sharpe, Sortino, Calmar, profit factor)')], default='sharpe', max_length=16)),
                        ('min_trades', models.PositiveIntegerField(default=10, help_text='Windows with fewer closed trades are penalised.')),
                        ('sampler', models.CharField(choices=[('tpe', 'TPE'), ('random', 'Random'), ('grid', 'Grid'), ('cmaes', 'CMA-ES')], default='tpe', max_length=8)),
                        ('n_trials', models.PositiveIntegerField(default=100)),
                        ('timeout_s', models.FloatField(blank=True, help_text='Time budget per worker, seconds.', null=True)),
                        ('folds', models.PositiveSmallIntegerField(default=5)),
                        ('scheme', models.CharField(choices=[('rolling', 'Rolling'), ('anchored', 'Anchored')], default='rolling', max_length=8)),
                        ('holdout_share', models.FloatField(default=0.2, help_text='Final share of the period the optimiser never sees.')),
                        ('seed', models.BigIntegerField(blank=True, null=True)),
                        ('n_workers', models.PositiveSmallIntegerField(default=1)),
                        ('top_n', models.PositiveSmallIntegerField(default=5, help_text='Candidates validated and saved as configs.')),
                        ('cash', models.FloatField(default=10000.0)),
                        ('fee', models.FloatField(default=0.001)),
                        ('slippage', models.FloatField(default=0.0)),
                        ('sizing', models.CharField(choices=[('fraction', 'Fraction of equity'), ('notional', 'Fixed notional'), ('risk', 'Risk per trade (from the stop distance)')], default='fraction', max_length=10)),
                        ('size_value', models.FloatField(default=1.0)),
                        ('amount_step', models.FloatField(default=0.0)),
                        ('min_amount', models.FloatField(default=0.0)),
                        ('stop_loss', models.FloatField(blank=True, null=True)),
                        ('take_profit', models.FloatField(blank=True, null=True)),
                        ('trailing_stop', models.FloatField(blank=True, null=True)),
                        ('allow_short', models.BooleanField(default=False)),
                        ('study_name', models.CharField(blank=True, max_length=200)),
                        ('batch', models.CharField(blank=True, db_index=True, help_text='Runs created together (strategies × markets × timeframes) share this id.', max_length=32)),
                        ('holdout_start', models.DateTimeField(blank=True, help_text='Open of the first hold-out bar.', null=True)),
                        ('holdout_start_index', models.PositiveIntegerField(blank=True, null=True)),
                        ('trials_complete', models.PositiveIntegerField(default=0)),
                        ('trials_pruned', models.PositiveIntegerField(default=0)),
                        ('trials_failed', models.PositiveIntegerField(default=0)),
                        ('workers_finished', models.PositiveSmallIntegerField(default=0)),
                        ('worker_reports', models.JSONField(blank=True, default=list)),
                        ('validation_started_at', models.DateTimeField(blank=True, null=True)),
                        ('best_value', models.FloatField(blank=True, null=True)),
                        ('best_number', models.PositiveIntegerField(blank=True, null=True)),
                        ('best_params', models.JSONField(blank=True, null=True)),
                        ('result', models.JSONField(blank=True, help_text='The training result (train() JSON shape).', null=True)),
                        ('verdict', models.JSONField(blank=True, null=True)),
                        ('market', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='training_runs', to='marketdata.market')),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['-created_at'],
                        'db_table': 'backtests_trainingrun',
                    },
                ),
                migrations.CreateModel(
                    name='TrainingTrial',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('state', models.CharField(db_index=True, max_length=10)),
                        ('params', models.JSONField(default=dict)),
                        ('value', models.FloatField(blank=True, null=True)),
                        ('folds', models.JSONField(blank=True, default=list, help_text='Per-fold in-sample records.')),
                        ('bar_ranges', models.JSONField(blank=True, default=list, help_text='Bar ranges the trial read: [{fold, read_start, start, end}].')),
                        ('pruned_reason', models.CharField(blank=True, max_length=500)),
                        ('worker_id', models.CharField(blank=True, max_length=200)),
                        ('retried_from', models.PositiveIntegerField(blank=True, null=True)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('completed_at', models.DateTimeField(blank=True, null=True)),
                        ('duration_s', models.FloatField(blank=True, null=True)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trials', to='training.trainingrun')),
                    ],
                    options={
                        'ordering': ['run', 'number'],
                        'db_table': 'backtests_trainingtrial',
                    },
                ),
                migrations.AddIndex(
                    model_name='trainingrun',
                    index=models.Index(fields=['owner', '-created_at'], name='backtests_t_owner_i_9d8a0c_idx'),
                ),
                migrations.AddConstraint(
                    model_name='trainingtrial',
                    constraint=models.UniqueConstraint(fields=('run', 'number'), name='training_trial_unique_number'),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='trainingrun', table=None),
        migrations.AlterModelTable(name='trainingtrial', table=None),
        migrations.RenameIndex(model_name='trainingrun', new_name='training_tr_owner_i_4c0e79_idx',
                               old_name='backtests_t_owner_i_9d8a0c_idx'),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
