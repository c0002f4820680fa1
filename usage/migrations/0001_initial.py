# Moves UsageRecord and Limit from the gateway app to this one; see catalogue's 0001 for the method.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


def move_content_types(apps, schema_editor, old="gateway", new="usage"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in ("usagerecord", "limit"):
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, old="usage", new="gateway")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("catalogue", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("gateway", "0002_limit"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='UsageRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model_public_id', models.CharField(max_length=200)),
                        ('source', models.CharField(choices=[('api', 'API'), ('chat', 'Browser chat')], default='api', max_length=8)),
                        ('prompt_tokens', models.PositiveIntegerField(default=0)),
                        ('completion_tokens', models.PositiveIntegerField(default=0)),
                        ('usage_estimated', models.BooleanField(default=False)),
                        ('cost', models.DecimalField(decimal_places=8, default=Decimal('0'), max_digits=14)),
                        ('latency_ms', models.PositiveIntegerField(default=0)),
                        ('ttft_ms', models.PositiveIntegerField(blank=True, null=True)),
                        ('status', models.PositiveSmallIntegerField(default=200)),
                        ('error_code', models.CharField(blank=True, max_length=64)),
                        ('stream', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='accounts.apikey')),
                        ('model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='catalogue.languagemodel')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'gateway_usagerecord',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['user', 'created_at'], name='gateway_usa_user_id_3b2f5a_idx'), models.Index(fields=['api_key', 'created_at'], name='gateway_usa_api_key_f0df3a_idx'), models.Index(fields=['model', 'created_at'], name='gateway_usa_model_i_aadddc_idx'), models.Index(fields=['created_at'], name='gateway_usa_created_324c67_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='Limit',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(choices=[('default', 'Default for every user'), ('user', 'User'), ('key', 'API key')], editable=False, max_length=8)),
                        ('requests_per_minute', models.PositiveIntegerField(blank=True, help_text='Empty: inherit the default. 0: no limit.', null=True)),
                        ('tokens_per_minute', models.PositiveIntegerField(blank=True, help_text='Prompt plus completion tokens. Empty: inherit the default. 0: no limit.', null=True)),
                        ('budget_usd', models.DecimalField(blank=True, decimal_places=4, help_text='Spending cap per period. Empty: inherit the default. 0: no limit.', max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='budget (USD)')),
                        ('budget_period', models.CharField(choices=[('day', 'Day (UTC)'), ('month', 'Month (UTC)')], default='month', max_length=8)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='limit', to='accounts.apikey')),
                        ('user', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='limit', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'gateway_limit',
                        'verbose_name': 'limit',
                        'ordering': ['scope', 'id'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('user__isnull', True), ('api_key__isnull', True), _connector='OR'), name='limit_user_or_key_not_both'), models.UniqueConstraint(condition=models.Q(('scope', 'default')), fields=('scope',), name='limit_one_default')],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
