"""Training models moved to the training app (state only: training 0001 takes over the tables)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('backtests', '0005_training_batch'),
        ('training', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name='trainingtrial', name='run'),
                migrations.DeleteModel(name='TrainingRun'),
                migrations.DeleteModel(name='TrainingTrial'),
            ],
            database_operations=[],
        ),
    ]
